package stage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/evergreen-images/evergreen/config"
	"github.com/evergreen-images/evergreen/internal/awsops"
	"github.com/evergreen-images/evergreen/internal/records"
	"github.com/evergreen-images/evergreen/runtimes"
)

// Publish publishes, for one runtime-version, exactly the digests Verify
// recorded as passed in this execution, through the ECR API: manifests
// only, no layer is pulled or pushed, no Docker daemon is needed.
//
// All or nothing. Before it moves any tag it checks everything it needs: a
// passed record for every architecture, each verified image still in the
// repository with the bytes its digest names (on every path: unchanged,
// held and blocked too), the hold, and the dated tag absent or naming a set
// this execution already committed to. Any doubt: it changes nothing, says
// so, and fails. An error after its first write says what it moved and to
// retry the Publish stage, which completes the publish.
//
// The dated tag (<version>-r<yyyymmdd>-<execution id>) is the commit
// point. It is immutable and written first, so of two Publish runs of one
// execution (a retry, a concurrent retry, a Publish after the drafts were
// rebuilt), whichever writes it decides the set, and every run then
// completes that set: <v>-<arch>, then <v>, then the drafts are removed.
// Each per-architecture image gets its published tag before its draft tag
// goes, because ECR deletes an image with its last tag. A run stopped
// between <v>-<arch> and <v> leaves them on different content: that split
// is never one published set, so no later run calls it unchanged.
//
// Publish only what changed, and never backwards. When every
// architecture's verified image holds what the published one holds (by
// the inventories Publish keeps), the outcome is "unchanged": no tag
// moves, so the published digests (and the consumers' pins on them) stay.
// A rollback's hold makes the outcome "held", on every path, a committed
// one included. When what is published was pushed after this execution's
// images (a newer execution published while this one waited for a retry),
// the outcome is "superseded": tags move back never. Otherwise the outcome
// is "published", unless the vulnerability gate, comparing with what is
// published now, blocks it: "blocked" keeps the published image and the
// drafts, and puts no freshness metric.
//
// Whatever the outcome but blocked, Publish keeps the consumers' SSM
// parameters on the published digests (writing one only when its value
// differs), records the outcome for the Report stage and make status, and
// emits the freshness metric of the runtime-version last.
func Publish(ctx context.Context, e Env, c Clients, out io.Writer) error {
	if err := e.require("publish", map[string]string{
		"PIPELINE_EXECUTION_ID": e.ExecutionID, "REGISTRY": e.Registry, "RECORDS_BUCKET": e.RecordsBucket,
		"RUNTIME": e.Runtime, "REPOSITORY": e.Repository, "VERSION": e.Version, "ARCHITECTURES": strings.Join(e.Architectures, " "),
		"PARAMETER_PREFIX": e.ParameterPrefix, "METRIC_NAMESPACE": e.MetricNamespace, "STACK_NAME": e.StackName,
		"VULNERABILITY_GATE": e.Gate,
	}); err != nil {
		return err
	}
	gate, err := config.ParseGateEnv(e.Gate)
	if err != nil {
		return fmt.Errorf("publish %s %s: %w", e.Runtime, e.Version, err)
	}
	now := c.Now
	if now == nil {
		now = time.Now
	}
	p := &publisher{e: e, c: c, out: out, gate: gate, now: now,
		im: images{ecr: c.ECR, repo: e.Repository, out: out}}
	return p.run(ctx)
}

// publisher is one Publish run of one runtime-version.
type publisher struct {
	e    Env
	c    Clients
	out  io.Writer
	gate config.VulnerabilityGate
	now  func() time.Time
	im   images

	// wrote lists what this run changed, for the message of an error
	// after it; attempted is set before the first write is tried (a write
	// that failed may still have happened).
	wrote     []string
	attempted bool

	records  map[string]records.Verify // by architecture
	verified map[string]awsops.Manifest
	prior    *records.Publish // this execution's Publish record, if any

	// published: what <v>-<arch> and <v> name now (digests, "" when
	// absent), and prev, the one published set they form (nil when they
	// do not: never published, or split).
	publishedArch map[string]string
	publishedIdx  string
	prev          *records.Set
}

// fail is an error that tells the truth about what changed:
// "changed nothing" only when no write was tried; else what was written,
// and that a retry completes it.
func (p *publisher) fail(format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if !p.attempted {
		return fmt.Errorf("Publish refused %s %s and changed nothing: %s", p.e.Runtime, p.e.Version, msg)
	}
	done := "tried its first write"
	if len(p.wrote) > 0 {
		done = "wrote " + strings.Join(p.wrote, ", ")
	}
	return fmt.Errorf("Publish of %s %s stopped after it %s: %s; retry the Publish stage to complete it", p.e.Runtime, p.e.Version, done, msg)
}

// write runs one mutating call and remembers what it changed.
func (p *publisher) write(what string, f func() (bool, error)) error {
	p.attempted = true
	wrote, err := f()
	if wrote {
		p.wrote = append(p.wrote, what)
	}
	return err
}

func (p *publisher) key(k func(string, string, string) string) string {
	return k(p.e.ExecutionID, p.e.Runtime, p.e.Version)
}

func (p *publisher) archTag(arch string) string {
	return runtimes.ArchTag(p.e.Version, runtimes.Arch(arch))
}

var digestPattern = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

func (p *publisher) run(ctx context.Context) error {
	e := p.e
	// 1. What Verify established: a passed record per architecture, and
	//    each verified image in the repository with the bytes its digest
	//    names.
	if err := p.readRecords(ctx); err != nil {
		return err
	}
	if err := p.checkVerifiedImages(ctx); err != nil {
		return err
	}
	hold, err := p.readHold(ctx)
	if err != nil {
		return err
	}
	if err := p.readPublished(ctx); err != nil {
		return err
	}

	// 2. The commit point: this execution's dated tag, whatever its day
	//    (drafts rebuilt after midnight must not make a second commit
	//    point), and the set it names.
	dated, committed, err := p.committedSet(ctx)
	if err != nil {
		return err
	}
	var set map[string]awsops.Manifest
	var index awsops.Manifest
	ours := map[string]string{}
	if committed != nil {
		index = *committed
		if ours, err = p.setDigests(index); err != nil {
			return err
		}
	} else {
		for _, a := range e.Architectures {
			ours[a] = p.records[a].Digest
		}
	}

	outcome := records.ResultPublished
	var newer string
	switch {
	case hold != nil:
		fmt.Fprintf(p.out, "%s %s is held at %s since %s by a rollback: its tags do not move (make resume RUNTIME=%s VERSION=%s releases it)\n",
			e.Runtime, e.Version, hold.To, hold.At, e.Runtime, e.Version)
		outcome = records.ResultHeld
	default:
		newer, err = p.supersededBy(ctx, ours)
		if err != nil {
			return err
		}
		switch {
		case newer != "":
			fmt.Fprintf(p.out, "%s %s: %s; its tags do not move back to this execution's images\n", e.Runtime, e.Version, newer)
			outcome = records.ResultSuperseded
		case committed != nil:
			fmt.Fprintf(p.out, "%s:%s: execution %s committed to %s; completing it\n", e.Repository, dated, e.ExecutionID, index.Digest)
		default:
			same, err := p.sameAsPublished(ctx)
			if err != nil {
				return err
			}
			if same {
				fmt.Fprintf(p.out, "%s %s: the verified images hold what the published ones hold (base, recipe, packages): the published tags keep their digests\n", e.Runtime, e.Version)
				outcome = records.ResultUnchanged
			}
		}
	}

	// The vulnerability gate judges what would be published, against
	// what is published now. A committed set was judged before its
	// commit point.
	if outcome == records.ResultPublished && committed == nil && p.gate.Mode != "off" {
		reasons, err := p.judge(ctx)
		if err != nil {
			return err
		}
		if len(reasons) > 0 {
			return p.blocked(ctx, reasons)
		}
	}

	if outcome != records.ResultPublished {
		return p.keep(ctx, outcome, newer, committed != nil)
	}

	// 3. A publish: the commit point, then the tags, then the drafts.
	previous := p.prev
	if committed == nil {
		if index, set, err = p.indexOf(p.verified); err != nil {
			return err
		}
		for _, a := range e.Architectures {
			if p.records[a].Inventory == nil {
				return p.fail("the %s verification record has no inventory (retry the Verify stage)", a)
			}
		}
		// Before the commit point: the inventories of the images about
		// to be published (the next Publish compares with them), and what
		// the tags name now (a retry's changelog needs it: by then the
		// tags have moved).
		for _, a := range e.Architectures {
			r := p.records[a]
			key := records.InventoryKey(e.Runtime, e.Version, a, r.Digest)
			if err := p.write(p.c.Records.URL(key), func() (bool, error) { return true, p.c.Records.PutJSON(ctx, key, r.Inventory) }); err != nil {
				return p.fail("%v", err)
			}
		}
		pk := p.key(records.PreviousKey)
		if err := p.write(p.c.Records.URL(pk), func() (bool, error) { return true, p.c.Records.PutJSON(ctx, pk, p.prev) }); err != nil {
			return p.fail("%v", err)
		}
		// The dated tag carries the day Build pushed the images (from the
		// record), not today's date, so a Publish retried after midnight
		// writes the same tag.
		day, err := p.pushDay()
		if err != nil {
			return p.fail("%v", err)
		}
		dated = runtimes.DatedTag(e.Version, day, e.ExecutionID)
		// A concurrent Publish may write it first: either way it is read
		// back, and the set it names is the one completed.
		werr := p.write(e.Repository+":"+dated, func() (bool, error) { return p.im.putTag(ctx, dated, index) })
		have, found, err := p.im.get(ctx, byTag(dated))
		if err != nil || !found {
			return p.fail("%s:%s could not be written or read back (%v %v)", e.Repository, dated, werr, err)
		}
		if have.Digest != index.Digest {
			fmt.Fprintf(p.out, "%s:%s names %s, another verified set of execution %s: completing that one\n", e.Repository, dated, have.Digest, e.ExecutionID)
			index = have
			set = nil
		}
	} else {
		var found bool
		found, err = p.c.Records.GetJSON(ctx, p.key(records.PreviousKey), &previous)
		if err != nil {
			return p.fail("%v", err)
		}
		if !found {
			previous = nil
		}
	}
	if set == nil {
		set, err = p.loadSet(ctx, dated, index)
		if err != nil {
			return err
		}
	}
	images := map[string]string{}
	for _, a := range e.Architectures {
		images[a] = set[a].Digest
	}
	// The content changed when its index was first pushed (the commit
	// point): a retried Publish of the same execution says the same.
	pushed, err := p.im.pushedAt(ctx, index.Digest)
	if err != nil {
		return p.fail("could not read when %s:%s was pushed: %v", e.Repository, dated, err)
	}
	changes := map[string]*records.Changes{}
	vulns := map[string]*records.Vulnerabilities{}
	inventories := map[string]*records.Inventory{}
	for _, a := range e.Architectures {
		var inv *records.Inventory
		key := records.InventoryKey(e.Runtime, e.Version, a, images[a])
		found, err := p.c.Records.GetJSON(ctx, key, &inv)
		if err != nil {
			return p.fail("%v", err)
		}
		if !found || inv == nil {
			return p.fail("no inventory of the %s image %s in the records bucket (%s)", a, images[a], p.c.Records.URL(key))
		}
		var old *records.Inventory
		if previous != nil && previous.Images[a] != "" {
			if _, err := p.c.Records.GetJSON(ctx, records.InventoryKey(e.Runtime, e.Version, a, previous.Images[a]), &old); err != nil {
				return p.fail("%v", err)
			}
		}
		inventories[a] = inv
		changes[a] = inventoryDelta(old, inv)
		vulns[a] = vulnerabilityDelta(p.records[a], images[a])
	}
	published := set0(index.Digest, dated, images)
	docs, err := p.attachEvidence(ctx, index, set, inventories, p.verdict(published, previous, records.Time(pushed), changes, vulns))
	if err != nil {
		return err
	}

	for _, a := range e.Architectures {
		tag := p.archTag(a)
		if err := p.write(e.Repository+":"+tag, func() (bool, error) { return p.im.putTag(ctx, tag, set[a]) }); err != nil {
			return p.fail("%v", err)
		}
	}
	if err := p.write(e.Repository+":"+e.Version, func() (bool, error) { return p.im.putTag(ctx, e.Version, index) }); err != nil {
		return p.fail("%v", err)
	}
	if err := p.tagEvidence(ctx, docs); err != nil {
		return err
	}
	if err := p.removeDrafts(ctx, true); err != nil {
		return err
	}
	return p.finish(ctx, outcome, published, previous, records.Time(pushed), changes, vulns, nil)
}

func set0(index, dated string, images map[string]string) records.Set {
	return records.Set{Index: index, DatedTag: dated, Images: images}
}

// readRecords reads and checks every architecture's Verify record.
func (p *publisher) readRecords(ctx context.Context) error {
	e := p.e
	p.records = map[string]records.Verify{}
	for _, a := range e.Architectures {
		var v records.Verify
		key := records.VerifyKey(e.ExecutionID, e.Runtime, e.Version, a)
		found, err := p.c.Records.GetJSON(ctx, key, &v)
		if err != nil {
			return p.fail("%v (retry the Publish stage; the build role must be able to read the records bucket)", err)
		}
		if !found {
			return p.fail("no verification record for %s in execution %s: Verify has not passed it (retry the Verify stage)", a, e.ExecutionID)
		}
		if err := records.CheckSchema(p.c.Records.URL(key), v.SchemaVersion); err != nil {
			return p.fail("%v", err)
		}
		if v.Result != records.ResultPassed || v.ExecutionID != e.ExecutionID || v.Runtime != e.Runtime || v.Version != e.Version || v.Arch != a || !digestPattern.MatchString(v.Digest) {
			return p.fail("the %s verification record (%s) does not say passed for this execution (retry the Verify stage)", a, p.c.Records.URL(key))
		}
		p.records[a] = v
	}
	var prior records.Publish
	found, err := p.c.Records.GetJSON(ctx, p.key(records.PublishKey), &prior)
	if err != nil {
		return p.fail("%v", err)
	}
	if found {
		p.prior = &prior
	}
	return nil
}

// checkVerifiedImages reads every verified image by its digest, on every
// path, before any outcome is decided: an outcome about an image that is
// not there, or not what its digest names, is a lie. One exception: once
// this execution recorded an outcome, it removed its drafts, and an image
// that only its draft tag kept is gone (ECR deletes an image with its last
// tag); a retry then goes on without it.
func (p *publisher) checkVerifiedImages(ctx context.Context) error {
	p.verified = map[string]awsops.Manifest{}
	for _, a := range p.e.Architectures {
		d := p.records[a].Digest
		m, found, err := p.im.get(ctx, byDigest(d))
		if err != nil {
			return p.fail("the verified %s image: %v (retry the Build stage, then Verify and Publish)", a, err)
		}
		if !found {
			draft, dfound, derr := p.im.get(ctx, byTag(p.e.DraftTag(a)))
			if derr == nil && !dfound && p.prior != nil && p.prior.Result != records.ResultBlocked {
				fmt.Fprintf(p.out, "the verified %s image %s is no longer in %s: this execution's Publish recorded %s and removed its draft\n", a, d, p.e.Repository, p.prior.Result)
				continue
			}
			if derr == nil && dfound {
				return p.fail("the verified %s image %s is no longer in %s (its draft tag names %s now): retry the Verify stage, then Publish", a, d, p.e.Repository, draft.Digest)
			}
			return p.fail("the verified %s image %s is no longer in %s: retry the Build stage, then Verify and Publish", a, d, p.e.Repository)
		}
		if !awsops.IsImage(m.MediaType) {
			return p.fail("the verified %s image %s is a %s, not a single-platform image manifest (retry the Build stage)", a, d, m.MediaType)
		}
		p.verified[a] = m
	}
	return nil
}

// readHold reads the rollback's hold. Only "no such key" means no hold:
// a hold that cannot be read (AccessDenied, a throttle, a bad record)
// fails the entry, as a Publish that took it for absent would undo a
// rollback.
func (p *publisher) readHold(ctx context.Context) (*records.Hold, error) {
	var h records.Hold
	key := records.HoldKey(p.e.Runtime, p.e.Version)
	found, err := p.c.Records.GetJSON(ctx, key, &h)
	if err != nil {
		return nil, p.fail("cannot tell whether a rollback holds it: %v (the build role needs s3:GetObject and s3:ListBucket on the records bucket; retry the Publish stage)", err)
	}
	if !found {
		return nil, nil
	}
	if err := records.CheckSchema(p.c.Records.URL(key), h.SchemaVersion); err != nil {
		return nil, p.fail("%v", err)
	}
	return &h, nil
}

// readPublished reads what <v>-<arch> and <v> name now, and the one
// published set they form: <v> an index of exactly this runtime-version's
// architectures, and each <v>-<arch> the index's child for that
// architecture. Anything else (never published, a Publish or a rollback
// stopped between the tags, a manual change) is no set: then nothing
// counts as unchanged.
func (p *publisher) readPublished(ctx context.Context) error {
	e := p.e
	p.publishedArch = map[string]string{}
	archImages := map[string]awsops.Manifest{}
	for _, a := range e.Architectures {
		m, found, err := p.im.get(ctx, byTag(p.archTag(a)))
		if err != nil {
			return p.fail("reading what %s:%s names now: %v", e.Repository, p.archTag(a), err)
		}
		if found {
			p.publishedArch[a] = m.Digest
			archImages[a] = m
		}
	}
	idx, found, err := p.im.get(ctx, byTag(e.Version))
	if err != nil {
		return p.fail("reading what %s:%s names now: %v", e.Repository, e.Version, err)
	}
	if !found {
		return nil
	}
	p.publishedIdx = idx.Digest
	if !awsops.IsIndex(idx.MediaType) {
		fmt.Fprintf(p.out, "%s:%s is a %s, not an index: it is not a published set\n", e.Repository, e.Version, idx.MediaType)
		return nil
	}
	children, err := awsops.IndexChildren(idx)
	if err != nil {
		return p.fail("%v", err)
	}
	if len(children) != len(e.Architectures) {
		fmt.Fprintf(p.out, "%s:%s names %d images, not one per architecture (%s): it is not a published set\n", e.Repository, e.Version, len(children), strings.Join(e.Architectures, " "))
		return nil
	}
	images := map[string]string{}
	for _, a := range e.Architectures {
		child := ""
		for _, c := range children {
			if c.Arch == a && c.OS == "linux" {
				child = c.Digest
			}
		}
		if child == "" || child != p.publishedArch[a] {
			fmt.Fprintf(p.out, "%s:%s names %q for %s but %s:%s names %q: the tags are split, not one published set\n",
				e.Repository, e.Version, child, a, e.Repository, p.archTag(a), p.publishedArch[a])
			return nil
		}
		images[a] = child
	}
	d, err := p.im.describe(ctx, idx.Digest)
	if err != nil {
		return p.fail("could not describe what %s:%s names now: %v", e.Repository, e.Version, err)
	}
	var dated []string
	for _, t := range d.ImageTags {
		if runtimes.IsDatedTagOf(e.Version, t) {
			dated = append(dated, t)
		}
	}
	sort.Strings(dated)
	p.prev = &records.Set{Index: idx.Digest, Images: images}
	if len(dated) > 0 {
		p.prev.DatedTag = dated[len(dated)-1]
	}
	if d.ImagePushedAt != nil {
		p.prev.PushedAt = records.Time(*d.ImagePushedAt)
	}
	return nil
}

// committedSet finds this execution's dated tag and the index it names;
// committed is nil when the execution has not reached its commit point.
func (p *publisher) committedSet(ctx context.Context) (string, *awsops.Manifest, error) {
	tags, err := p.im.tags(ctx)
	if err != nil {
		return "", nil, p.fail("%v", err)
	}
	var mine []string
	for _, t := range tags {
		if _, id, ok := runtimes.ParseDatedTag(p.e.Version, t); ok && id == p.e.ExecutionID {
			mine = append(mine, t)
		}
	}
	if len(mine) == 0 {
		return "", nil, nil
	}
	sort.Strings(mine)
	dated := mine[0]
	m, found, err := p.im.get(ctx, byTag(dated))
	if err != nil {
		return "", nil, p.fail("%v", err)
	}
	if !found {
		return "", nil, nil
	}
	if !awsops.IsIndex(m.MediaType) {
		return "", nil, p.fail("%s:%s is a %s, not the index of a published set: remove it (aws ecr batch-delete-image) and retry the Publish stage", p.e.Repository, dated, m.MediaType)
	}
	return dated, &m, nil
}

// setDigests is the per-architecture image digests an index names.
func (p *publisher) setDigests(index awsops.Manifest) (map[string]string, error) {
	children, err := awsops.IndexChildren(index)
	if err != nil {
		return nil, p.fail("%v", err)
	}
	out := map[string]string{}
	for _, a := range p.e.Architectures {
		for _, c := range children {
			if c.Arch == a && c.OS == "linux" {
				out[a] = c.Digest
			}
		}
		if out[a] == "" {
			return nil, p.fail("the index %s names no %s image", index.Digest, a)
		}
	}
	return out, nil
}

// loadSet reads the per-architecture images an index names; they must all
// still be in the repository.
func (p *publisher) loadSet(ctx context.Context, dated string, index awsops.Manifest) (map[string]awsops.Manifest, error) {
	digests, err := p.setDigests(index)
	if err != nil {
		return nil, err
	}
	set := map[string]awsops.Manifest{}
	for _, a := range p.e.Architectures {
		m, found, err := p.im.get(ctx, byDigest(digests[a]))
		if err != nil {
			return nil, p.fail("%v", err)
		}
		if !found {
			return nil, p.fail("%s:%s names a %s image %s that is gone", p.e.Repository, dated, a, digests[a])
		}
		set[a] = m
	}
	return set, nil
}

// indexEntry is one entry of the index Publish writes.
type indexEntry struct {
	MediaType string            `json:"mediaType"`
	Digest    string            `json:"digest"`
	Size      int               `json:"size"`
	Platform  map[string]string `json:"platform"`
}

// indexOf is the index of the verified images, in ARCHITECTURES order: a
// Docker manifest list when every image is a Docker manifest, else an OCI
// index. The bytes depend only on the images, so two runs make the same
// index (and digest).
func (p *publisher) indexOf(verified map[string]awsops.Manifest) (awsops.Manifest, map[string]awsops.Manifest, error) {
	indexType := awsops.MediaDockerList
	var entries []indexEntry
	for _, a := range p.e.Architectures {
		m, ok := verified[a]
		if !ok {
			return awsops.Manifest{}, nil, p.fail("the verified %s image %s is no longer in %s and this execution has no commit point to complete: retry the Build stage, then Verify and Publish", a, p.records[a].Digest, p.e.Repository)
		}
		if m.MediaType != awsops.MediaDockerImage {
			indexType = awsops.MediaOCIIndex
		}
		platform := map[string]string{"architecture": a, "os": "linux"}
		if a == "arm64" {
			platform["variant"] = "v8"
		}
		entries = append(entries, indexEntry{MediaType: m.MediaType, Digest: m.Digest, Size: len(m.Bytes), Platform: platform})
	}
	b, err := json.Marshal(struct {
		SchemaVersion int          `json:"schemaVersion"`
		MediaType     string       `json:"mediaType"`
		Manifests     []indexEntry `json:"manifests"`
	}{2, indexType, entries})
	if err != nil {
		return awsops.Manifest{}, nil, p.fail("%v", err)
	}
	return awsops.Manifest{Digest: awsops.SHA256(b), MediaType: indexType, Bytes: b}, verified, nil
}

// pushDay is the UTC day Build pushed the first architecture's image.
func (p *publisher) pushDay() (string, error) {
	r := p.records[p.e.Architectures[0]]
	for _, layout := range []string{time.RFC3339Nano, records.TimeFormat} {
		if t, err := time.Parse(layout, r.PushedAt); err == nil {
			return t.UTC().Format("20060102"), nil
		}
	}
	return "", fmt.Errorf("the %s record's pushedAt %q is not a time (retry the Build stage)", r.Arch, r.PushedAt)
}

// supersededBy says which published image is newer than this execution's,
// or "". Push times decide, not tags: ECR keeps an image's imagePushedAt
// through a retag, so an older execution's images stay older however
// their tags move. ours are this execution's set, by architecture.
func (p *publisher) supersededBy(ctx context.Context, ours map[string]string) (string, error) {
	for _, a := range p.e.Architectures {
		cur := p.publishedArch[a]
		if cur == "" || cur == ours[a] {
			continue
		}
		curAt, err := p.im.pushedAt(ctx, cur)
		if err != nil {
			return "", p.fail("%v", err)
		}
		ourAt, err := p.im.pushedAt(ctx, ours[a])
		if err != nil {
			// Gone (a retry after this execution removed its drafts):
			// Build's record of the push says when.
			r := p.records[a]
			if r.Digest != ours[a] {
				return "", p.fail("%v", err)
			}
			t, perr := time.Parse(time.RFC3339Nano, r.PushedAt)
			if perr != nil {
				return "", p.fail("%v; the %s record's pushedAt %q is not a time either", err, a, r.PushedAt)
			}
			ourAt = t
		}
		if curAt.Truncate(time.Second).After(ourAt.Truncate(time.Second)) {
			return fmt.Sprintf("%s:%s names %s, pushed %s, after this execution's %s image %s (pushed %s): a newer execution published it",
				p.e.Repository, p.archTag(a), cur, records.Time(curAt), a, ours[a], records.Time(ourAt)), nil
		}
	}
	return "", nil
}

// sameAsPublished: every architecture's verified image has the content of
// the published one (base digest, recipe, packages), by their inventories.
func (p *publisher) sameAsPublished(ctx context.Context) (bool, error) {
	if p.prev == nil {
		return false, nil
	}
	for _, a := range p.e.Architectures {
		var pub *records.Inventory
		found, err := p.c.Records.GetJSON(ctx, records.InventoryKey(p.e.Runtime, p.e.Version, a, p.prev.Images[a]), &pub)
		if err != nil {
			return false, p.fail("%v", err)
		}
		if !found || !sameContent(p.records[a].Inventory, pub) {
			return false, nil
		}
	}
	return true, nil
}

// judge runs the gate on every architecture, against what is published
// now. Verify read the published image's scan; when <v>-<arch> has moved
// since (another Publish ran in between), that scan is of another image,
// and the gate cannot judge with it.
func (p *publisher) judge(ctx context.Context) ([]string, error) {
	var reasons []string
	for _, a := range p.e.Architectures {
		r := p.records[a]
		cur := p.publishedArch[a]
		published := r.PublishedScan
		switch {
		case cur == "":
			// Nothing published now: nothing to be worse than.
			published = nil
		case published != nil && published.Digest != cur:
			return nil, p.fail("the published %s image is %s now, not %s, the one Verify compared this execution's image with: the vulnerability gate must compare with what is published now (retry the Verify stage)",
				a, cur, published.Digest)
		}
		var pubInv *records.Inventory
		if cur != "" {
			if _, err := p.c.Records.GetJSON(ctx, records.InventoryKey(p.e.Runtime, p.e.Version, a, cur), &pubInv); err != nil {
				return nil, p.fail("%v", err)
			}
		}
		reasons = append(reasons, p.gate.Judge(a, config.GateImages{Scan: r.Scan, PublishedScan: published, Inventory: r.Inventory, PublishedInventory: pubInv})...)
	}
	return reasons, nil
}

// blocked records a runtime-version the gate blocked. Its published image
// and its drafts stay (to be looked at; the lifecycle rule retires them),
// no parameter moves and no freshness metric is put: the Report stage
// alerts with the CVEs.
func (p *publisher) blocked(ctx context.Context, reasons []string) error {
	e := p.e
	fmt.Fprintf(p.out, "the vulnerability gate (%s) blocks %s %s; its published image stays:\n", e.Gate, e.Runtime, e.Version)
	for _, r := range reasons {
		fmt.Fprintln(p.out, r)
	}
	now := records.Time(p.now())
	rec := records.Publish{SchemaVersion: records.SchemaVersion, Stage: "publish", Result: records.ResultBlocked, ExecutionID: e.ExecutionID,
		Runtime: e.Runtime, Version: e.Version, Repository: e.Repository, Registry: e.Registry, Gate: e.Gate, BlockedBy: reasons,
		BlockedImages: map[string]string{}, Images: map[string]string{}, Previous: p.prev, CheckedAt: now}
	for _, a := range e.Architectures {
		rec.BlockedImages[a] = p.records[a].Digest
	}
	if p.prev != nil {
		rec.Index, rec.DatedTag, rec.Images, rec.ChangedAt = p.prev.Index, p.prev.DatedTag, p.prev.Images, p.prev.PushedAt
	}
	key := p.key(records.PublishKey)
	if err := p.write(p.c.Records.URL(key), func() (bool, error) { return true, p.c.Records.PutJSON(ctx, key, rec) }); err != nil {
		return p.fail("%v", err)
	}
	stays := rec.Index
	if stays == "" {
		stays = "unpublished"
	}
	fmt.Fprintf(p.out, "blocked %s:%s: it stays %s\n", e.Repository, e.Version, stays)
	return nil
}

// keep ends an outcome that moves no tag (unchanged, held, superseded):
// the set is what the tags name now. Its records are written before the
// drafts go, so that a retry that finds this execution's verified images
// gone (ECR deletes an image with its last tag) knows why.
func (p *publisher) keep(ctx context.Context, outcome, newer string, committed bool) error {
	e := p.e
	if p.prev == nil {
		fix := "make rollback RUNTIME=" + e.Runtime + " VERSION=" + e.Version + " TO=<a dated tag> puts them on one set"
		if outcome == records.ResultSuperseded {
			fix = "retry the Publish stage of the newer execution (" + newer + ") so that it completes its set, then this one"
		}
		return p.fail("%s:%s and its architecture tags do not form one published set to keep: %s", e.Repository, e.Version, fix)
	}
	changedAt := ""
	var rel records.Release
	if found, err := p.c.Records.GetJSON(ctx, records.ReleaseKey(e.Runtime, e.Version), &rel); err != nil {
		return p.fail("%v", err)
	} else if found && rel.Index == p.prev.Index {
		changedAt = rel.ChangedAt
	}
	if changedAt == "" {
		changedAt = p.prev.PushedAt
	}
	return p.finish(ctx, outcome, *p.prev, p.prev, changedAt, map[string]*records.Changes{}, map[string]*records.Vulnerabilities{}, func() error {
		return p.removeDrafts(ctx, committed)
	})
}

// removeDrafts removes this execution's draft tags. When this execution
// committed a set, its dated index references its images, and ECR
// refuses to delete an image an index references
// (ImageReferencedByManifestList) when the draft is its last tag (a
// committed set that a hold or a newer publish kept from its tags): that
// draft stays, for the lifecycle rule.
func (p *publisher) removeDrafts(ctx context.Context, committed bool) error {
	var drafts []string
	for _, a := range p.e.Architectures {
		drafts = append(drafts, p.e.DraftTag(a))
	}
	var deleted []string
	err := p.write("removed the drafts", func() (bool, error) {
		var err error
		deleted, err = p.im.deleteTags(ctx, drafts, func(tag string, code ecrtypes.ImageFailureCode) bool {
			if committed && code == ecrtypes.ImageFailureCodeImageReferencedByManifestList {
				fmt.Fprintf(p.out, "kept %s:%s: this execution's dated index references its image\n", p.e.Repository, tag)
				return true
			}
			return false
		})
		return len(deleted) > 0, err
	})
	if err != nil {
		return p.fail("%v", err)
	}
	if len(deleted) > 0 {
		fmt.Fprintf(p.out, "removed %s\n", strings.Join(deleted, ", "))
	}
	return nil
}

// finish writes what every outcome but blocked writes: the consumers'
// parameters (for a published outcome), the Publish record and the
// release record, and the freshness metric last. beforeDrafts, when not
// nil, runs after the records (keep removes the drafts there).
func (p *publisher) finish(ctx context.Context, outcome string, set records.Set, previous *records.Set, changedAt string,
	changes map[string]*records.Changes, vulns map[string]*records.Vulnerabilities, afterRecords func() error) error {
	e := p.e
	now := records.Time(p.now())
	rec := records.Publish{SchemaVersion: records.SchemaVersion, Stage: "publish", Result: outcome, ExecutionID: e.ExecutionID,
		Runtime: e.Runtime, Version: e.Version, Repository: e.Repository, Registry: e.Registry, Index: set.Index, DatedTag: set.DatedTag,
		Images: set.Images, Previous: previous, Changes: changes, Vulnerabilities: vulns, PublishedAt: now, CheckedAt: now, ChangedAt: changedAt}

	// 4. The consumers' parameters: <prefix>/<runtime>/<version> names the
	//    index, .../<arch> each image, by digest.
	base := e.ParameterPrefix + "/" + e.Runtime + "/" + e.Version
	if err := p.putParam(ctx, base, e.Registry+"/"+e.Repository+"@"+set.Index); err != nil {
		return err
	}
	for _, a := range e.Architectures {
		if err := p.putParam(ctx, base+"/"+a, e.Registry+"/"+e.Repository+"@"+set.Images[a]); err != nil {
			return err
		}
	}

	// 5. The records of the outcome: this execution's, for the Report
	//    stage; the runtime-version's latest, for make status. A
	//    superseded run leaves the latest to the newer execution that
	//    published it.
	key := p.key(records.PublishKey)
	if err := p.write(p.c.Records.URL(key), func() (bool, error) { return true, p.c.Records.PutJSON(ctx, key, rec) }); err != nil {
		return p.fail("%v", err)
	}
	if outcome != records.ResultSuperseded {
		rel := records.Release{SchemaVersion: records.SchemaVersion, Runtime: e.Runtime, Version: e.Version, Repository: e.Repository,
			Result: outcome, ExecutionID: e.ExecutionID, CheckedAt: now, ChangedAt: changedAt, Index: set.Index, DatedTag: set.DatedTag, Images: set.Images}
		rk := records.ReleaseKey(e.Runtime, e.Version)
		if err := p.write(p.c.Records.URL(rk), func() (bool, error) { return true, p.c.Records.PutJSON(ctx, rk, rel) }); err != nil {
			return p.fail("%v", err)
		}
	}
	if afterRecords != nil {
		if err := afterRecords(); err != nil {
			return err
		}
	}

	// The freshness signal, last: unchanged, held and superseded are
	// fresh too, the check ran.
	err := p.write("the freshness metric", func() (bool, error) {
		_, err := p.c.CloudWatch.PutMetricData(ctx, &cloudwatch.PutMetricDataInput{
			Namespace: aws.String(e.MetricNamespace),
			MetricData: []cwtypes.MetricDatum{{
				MetricName: aws.String("Fresh"), Unit: cwtypes.StandardUnitCount, Value: aws.Float64(1),
				Dimensions: []cwtypes.Dimension{
					{Name: aws.String("Stack"), Value: aws.String(e.StackName)},
					{Name: aws.String("Runtime"), Value: aws.String(e.Runtime)},
					{Name: aws.String("Version"), Value: aws.String(e.Version)},
				},
			}},
		})
		if err != nil {
			return false, fmt.Errorf("putting the metric %s Fresh for %s %s: %s", e.MetricNamespace, e.Runtime, e.Version, awsops.Short(err))
		}
		return true, nil
	})
	if err != nil {
		return p.fail("%v", err)
	}
	fmt.Fprintf(p.out, "%s %s:%s %s (%s)\n", outcome, e.Repository, e.Version, set.Index, set.DatedTag)
	return nil
}

// putParam writes a consumer's parameter only when its value differs, so
// that its version (and whatever watches it) moves only with the digest.
func (p *publisher) putParam(ctx context.Context, name, value string) error {
	have, err := p.c.SSM.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name)})
	var nf *ssmtypes.ParameterNotFound
	switch {
	case err == nil && have.Parameter != nil && aws.ToString(have.Parameter.Value) == value:
		fmt.Fprintf(p.out, "parameter %s already holds %s\n", name, value)
		return nil
	case err != nil && !errors.As(err, &nf):
		return p.fail("reading the parameter %s: %s (the build role needs ssm:GetParameter on it)", name, awsops.Short(err))
	}
	err = p.write("the parameter "+name, func() (bool, error) {
		_, err := p.c.SSM.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(name), Value: aws.String(value), Type: ssmtypes.ParameterTypeString, Overwrite: aws.Bool(true)})
		if err != nil {
			return false, fmt.Errorf("writing the parameter %s: %s", name, awsops.Short(err))
		}
		return true, nil
	})
	if err != nil {
		return p.fail("%v", err)
	}
	fmt.Fprintf(p.out, "parameter %s = %s\n", name, value)
	return nil
}
