// Package rollback points a runtime-version's moving tags back at one of its
// dated releases (make rollback), and holds them there: the daily Publish
// leaves a held runtime-version alone until make resume lifts the hold.
package rollback

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/evergreen-images/evergreen/config"
	"github.com/evergreen-images/evergreen/internal/awsops"
	"github.com/evergreen-images/evergreen/internal/records"
	"github.com/evergreen-images/evergreen/internal/referrers"
	"github.com/evergreen-images/evergreen/runtimes"
)

// Options of one rollback.
type Options struct {
	Config config.Config
	List   *runtimes.List
	// Runtime and Version name the runtime-version; To is one of its dated
	// tags (<version>-r<yyyymmdd>-<id>).
	Runtime, Version, To string
	// Bucket is the records bucket. When it is set, the stack's outputs are
	// not read and TopicArn is taken as given (empty: no SNS message).
	Bucket   string
	TopicArn string
	// Now is the time the rollback records; zero means the clock.
	Now time.Time
	// Registry is where the registry API answers for the evidence tags;
	// empty means the repository URI's host, logged in with an ECR token.
	Registry string
}

// target is what the rollback points the tags at, checked.
type target struct {
	index  awsops.Manifest
	images map[runtimes.Arch]awsops.Manifest
}

// Validate checks the arguments, before any AWS call: the list has the
// runtime-version, and TO is one of its dated tags.
func (o Options) Validate() error {
	rt, err := awsops.FindRelease(o.List, o.Runtime, o.Version)
	if err != nil {
		return err
	}
	v := o.Version
	if !runtimes.IsDatedTagOf(v, o.To) {
		return fmt.Errorf("TO=%q is not a dated tag of %s %s: dated tags are %s-r<yyyymmdd>-<execution id>, e.g. %s; make status lists them",
			o.To, rt.Name, v, v, runtimes.DatedTag(v, "20261120", "0a1b2c3d-0a1b-4c2d-8e3f-0a1b2c3d4e5f"))
	}
	return nil
}

// Run rolls back, printing one line per step to w. Every check comes before
// the first change: a refused rollback changes nothing.
func Run(ctx context.Context, cfg aws.Config, o Options, w io.Writer) error {
	if err := o.Validate(); err != nil {
		return err
	}
	rt, _ := awsops.FindRelease(o.List, o.Runtime, o.Version)
	v := o.Version
	repo := o.Config.RepositoryName(rt.Name)
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	now = now.UTC().Truncate(time.Second)
	bucket, topic := o.Bucket, o.TopicArn
	if bucket == "" {
		n, err := awsops.StackNames(ctx, cfg, o.Config.StackName)
		if err != nil {
			return err
		}
		bucket, topic = n.Bucket, n.Topic
	}

	id, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return awsops.CallError(err)
	}
	by := aws.ToString(id.Arn)
	ecrc := ecr.NewFromConfig(cfg)
	s3c := awsops.NewS3(cfg)
	ssmc := ssm.NewFromConfig(cfg)
	uri, err := awsops.RepositoryURI(ctx, ecrc, repo)
	if err != nil {
		return err
	}
	tg, err := check(ctx, ecrc, rt, repo, o)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "checked   %s:%s = %s (its bytes hash to it); %s present\n", repo, o.To, tg.index.Digest, describeImages(rt, tg))

	// Where the tags point now, for the changelog and the way back.
	before := map[string]string{}
	for _, tag := range runtimes.MovingTags(rt, v) {
		m, found, err := awsops.GetManifest(ctx, ecrc, repo, ecrtypes.ImageIdentifier{ImageTag: aws.String(tag)})
		if err != nil {
			return err
		}
		if found {
			before[tag] = m.Digest
		}
	}
	previousDated := ""
	if d, found, err := awsops.ImageOfTag(ctx, ecrc, repo, v); err == nil && found {
		for _, t := range d.ImageTags {
			if runtimes.IsDatedTagOf(v, t) {
				previousDated = t
			}
		}
	}

	// The hold comes first: were it written last and failed, the next
	// Publish would move the tags back to the content the rollback undid.
	// A hold whose tags did not all move is harmless and visible in make
	// status; running the rollback again completes it.
	at := now.Format(records.TimeFormat)
	hold := records.Hold{SchemaVersion: records.SchemaVersion, To: o.To, Index: tg.index.Digest, At: at, By: by}
	if err := (records.Store{S3: s3c, Bucket: bucket}).PutJSON(ctx, records.HoldKey(rt.Name, v), hold); err != nil {
		return fmt.Errorf("%v: nothing was changed; check the bucket name (stack output %s) and your permissions", err, awsops.OutputRecordsBucket)
	}
	fmt.Fprintf(w, "hold      s3://%s/%s: Publish leaves %s %s as it is until make resume RUNTIME=%s VERSION=%s\n", bucket, records.HoldKey(rt.Name, v), rt.Name, v, rt.Name, v)

	// From here on a failure leaves the rollback part done, held: every
	// step is safe to repeat, so running it again completes it.
	partial := func(err error) error {
		return fmt.Errorf("%v; the hold is in place and the rollback is not complete: run the same make rollback again to finish it, or make resume to drop the hold", err)
	}

	// Per-architecture tags first, the index last, in the order Publish
	// uses: until the last step, <v> still names a complete index, the
	// earlier one.
	for _, a := range rt.Architectures {
		tag := runtimes.ArchTag(v, a)
		line, err := move(ctx, ecrc, repo, tag, before[tag], tg.images[a])
		if err != nil {
			return partial(err)
		}
		fmt.Fprintln(w, line)
	}
	line, err := move(ctx, ecrc, repo, v, before[v], tg.index)
	if err != nil {
		return partial(err)
	}
	fmt.Fprintln(w, line)
	retagEvidence(ctx, ecrc, uri, o.Registry, rt, v, tg, w)

	// The parameters, only where they differ: a put of the same value adds a
	// parameter version and changes nothing else.
	prefix := o.Config.ParameterPrefix() + "/" + rt.Name + "/" + v
	params := [][2]string{{prefix, uri + "@" + tg.index.Digest}}
	for _, a := range rt.Architectures {
		params = append(params, [2]string{prefix + "/" + string(a), uri + "@" + tg.images[a].Digest})
	}
	var paramLines []string
	for _, p := range params {
		line, err := putParameter(ctx, ssmc, p[0], p[1])
		if err != nil {
			return partial(err)
		}
		fmt.Fprintln(w, line)
		paramLines = append(paramLines, line)
	}

	rel := records.Release{SchemaVersion: records.SchemaVersion, Runtime: rt.Name, Version: v, Repository: repo, Result: records.ResultRolledBack, ExecutionID: "",
		CheckedAt: at, ChangedAt: at, Index: tg.index.Digest, DatedTag: o.To, Images: map[string]string{}}
	for _, a := range rt.Architectures {
		rel.Images[string(a)] = tg.images[a].Digest
	}
	if err := (records.Store{S3: s3c, Bucket: bucket}).PutJSON(ctx, records.ReleaseKey(rt.Name, v), rel); err != nil {
		return partial(err)
	}
	fmt.Fprintf(w, "release   s3://%s/%s: %s\n", bucket, records.ReleaseKey(rt.Name, v), records.ResultRolledBack)

	text := changelog(rt, v, repo, o.To, by, at, before, tg, paramLines, previousDated, bucket)
	key := records.RollbackKey(rt.Name, v, now)
	if err := (records.Store{S3: s3c, Bucket: bucket}).Put(ctx, key, "text/plain; charset=utf-8", []byte(text)); err != nil {
		return partial(err)
	}
	fmt.Fprintf(w, "changelog s3://%s/%s\n", bucket, key)

	if topic == "" {
		fmt.Fprintf(w, "sns       no %s (the stack has no such output): no message sent\n", awsops.OutputChangesTopic)
		return nil
	}
	subject := Subject(rt.Name, v, o.To)
	if _, err := sns.NewFromConfig(cfg).Publish(ctx, &sns.PublishInput{TopicArn: aws.String(topic), Subject: aws.String(subject), Message: aws.String(text)}); err != nil {
		return fmt.Errorf("the rollback is done, but its message to %s failed (%s): the changelog is in s3://%s/%s", topic, awsops.Short(err), bucket, key)
	}
	fmt.Fprintf(w, "sns       sent %q to %s\n", subject, topic)
	return nil
}

// retagEvidence moves the evidence tags with the moving tags, so that the
// lifecycle's keep rule holds the evidence of what is published now. It
// only warns on failure: the tags are keep markers (consumers find
// evidence through the Referrers API, by digest), and a rollback is done
// in a hurry; running it again retries them.
func retagEvidence(ctx context.Context, ecrc *ecr.Client, uri, registry string, rt *runtimes.Runtime, v string, tg target, w io.Writer) {
	host, path, _ := strings.Cut(uri, "/")
	if registry == "" {
		registry = host
	}
	warn := func(err error) {
		fmt.Fprintf(w, "evidence  the evidence tags were not moved (%v): run the same make rollback again to move them\n", err)
	}
	auth, err := referrers.ECRAuthenticator(ctx, ecrc)
	if err != nil {
		warn(err)
		return
	}
	repo, err := name.NewRepository(registry + "/" + path)
	if err != nil {
		warn(err)
		return
	}
	subjects := [][2]string{}
	for _, a := range rt.Architectures {
		subjects = append(subjects, [2]string{runtimes.ArchTag(v, a), tg.images[a].Digest})
	}
	subjects = append(subjects, [2]string{v, tg.index.Digest})
	for _, s := range subjects {
		h, err := v1.NewHash(s[1])
		if err != nil {
			warn(err)
			return
		}
		tags, err := referrers.RetagEvidence(ctx, repo, s[0], h, remote.WithAuth(auth))
		if err != nil {
			warn(err)
			return
		}
		if len(tags) == 0 {
			fmt.Fprintf(w, "evidence  %s@%s has no evidence (published before Publish attached it)\n", repo, s[1])
			continue
		}
		fmt.Fprintf(w, "evidence  %s -> the evidence of %s\n", strings.Join(tags, ", "), s[1])
	}
}

// Subject is the SNS subject of a rollback message. SNS refuses subjects
// longer than 100 characters.
func Subject(rt, v, to string) string {
	s := fmt.Sprintf("evergreen: %s %s rolled back to %s", rt, v, to)
	if len(s) > 100 {
		s = s[:100]
	}
	return s
}

// check reads the dated index and its images, and refuses anything but an
// index whose bytes hash to its digest and that names exactly one image per
// architecture of the runtime, each still in the repository with the bytes
// its digest names.
func check(ctx context.Context, c *ecr.Client, rt *runtimes.Runtime, repo string, o Options) (target, error) {
	var tg target
	idx, found, err := awsops.GetManifest(ctx, c, repo, ecrtypes.ImageIdentifier{ImageTag: aws.String(o.To)})
	if err != nil {
		return tg, err
	}
	if !found {
		return tg, fmt.Errorf("%s is not in %s: either no Publish wrote it, or the lifecycle rule retired it (dated tags are kept %d days, evergreen:datedTagRetentionDays); nothing was changed; choose a dated tag that is still there", o.To, repo, o.Config.DatedRetentionDays)
	}
	if !awsops.IsIndex(idx.MediaType) {
		return tg, fmt.Errorf("%s:%s is a %q, not a multi-architecture index as Publish writes: nothing was changed", repo, o.To, idx.MediaType)
	}
	if got := awsops.SHA256(idx.Bytes); got != idx.Digest {
		return tg, fmt.Errorf("the manifest of %s:%s hashes to %s, not to its digest %s: refusing to publish bytes that are not what the digest names; nothing was changed", repo, o.To, got, idx.Digest)
	}
	children, err := awsops.IndexChildren(idx)
	if err != nil {
		return tg, err
	}
	tg = target{index: idx, images: map[runtimes.Arch]awsops.Manifest{}}
	byArch := map[runtimes.Arch]awsops.Child{}
	for _, ch := range children {
		a := runtimes.Arch(ch.Arch)
		if ch.OS != "linux" || !slices.Contains(rt.Architectures, a) {
			return tg, fmt.Errorf("%s names an image for %s/%s, which %s does not list (%s): nothing was changed", o.To, ch.OS, ch.Arch, rt.Name, archList(rt))
		}
		if _, dup := byArch[a]; dup {
			return tg, fmt.Errorf("%s names two images for %s: nothing was changed", o.To, a)
		}
		byArch[a] = ch
	}
	for _, a := range rt.Architectures {
		ch, ok := byArch[a]
		if !ok {
			return tg, fmt.Errorf("%s names no image for %s, which %s lists (%s): it cannot serve every architecture; nothing was changed", o.To, a, rt.Name, archList(rt))
		}
		m, found, err := awsops.GetManifest(ctx, c, repo, ecrtypes.ImageIdentifier{ImageDigest: aws.String(ch.Digest)})
		if err != nil {
			return tg, err
		}
		if !found {
			return tg, fmt.Errorf("the %s image %s that %s names is no longer in %s (deleted, or retired by a lifecycle rule): %s cannot be restored; nothing was changed; choose a newer dated tag", a, ch.Digest, o.To, repo, o.To)
		}
		if got := awsops.SHA256(m.Bytes); got != ch.Digest {
			return tg, fmt.Errorf("the %s image of %s hashes to %s, not to its digest %s: nothing was changed", a, o.To, got, ch.Digest)
		}
		if m.MediaType == "" {
			m.MediaType = ch.MediaType
		}
		m.Digest = ch.Digest
		tg.images[a] = m
	}
	return tg, nil
}

func archList(rt *runtimes.Runtime) string {
	var s []string
	for _, a := range rt.Architectures {
		s = append(s, string(a))
	}
	return strings.Join(s, ", ")
}

func describeImages(rt *runtimes.Runtime, tg target) string {
	var s []string
	for _, a := range rt.Architectures {
		s = append(s, string(a)+" "+tg.images[a].Digest)
	}
	return strings.Join(s, ", ")
}

func move(ctx context.Context, c *ecr.Client, repo, tag, from string, to awsops.Manifest) (string, error) {
	already, err := awsops.PutManifest(ctx, c, repo, tag, to)
	if err != nil {
		return "", err
	}
	if already || from == to.Digest {
		return fmt.Sprintf("tag       %s:%s already points at %s", repo, tag, to.Digest), nil
	}
	if from == "" {
		from = "(no such tag)"
	}
	return fmt.Sprintf("tag       %s:%s %s -> %s", repo, tag, from, to.Digest), nil
}

func putParameter(ctx context.Context, c *ssm.Client, name, value string) (string, error) {
	cur := ""
	got, err := c.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name)})
	switch {
	case err == nil:
		cur = aws.ToString(got.Parameter.Value)
	case awsops.IsCode(err, "ParameterNotFound"):
	default:
		return "", fmt.Errorf("reading parameter %s: %s", name, awsops.Short(err))
	}
	if cur == value {
		return fmt.Sprintf("parameter %s already %s", name, value), nil
	}
	if _, err := c.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(name), Value: aws.String(value), Type: ssmtypes.ParameterTypeString, Overwrite: aws.Bool(true)}); err != nil {
		return "", fmt.Errorf("writing parameter %s: %s", name, awsops.Short(err))
	}
	if cur == "" {
		cur = "(not set)"
	}
	return fmt.Sprintf("parameter %s %s -> %s", name, cur, value), nil
}

// changelog is the rollback's plain-text entry, for the bucket and the SNS
// message alike.
func changelog(rt *runtimes.Runtime, version, repo, to, by, at string, before map[string]string, tg target, paramLines []string, previousDated, bucket string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Rollback of %s %s (%s) to %s\n", rt.Name, version, repo, to)
	fmt.Fprintf(&b, "at %s by %s\n\n", at, by)
	fmt.Fprintln(&b, "Tags moved:")
	line := func(tag, want string) {
		from := before[tag]
		switch {
		case from == want:
			fmt.Fprintf(&b, "  %s:%s unchanged, %s\n", repo, tag, want)
		case from == "":
			fmt.Fprintf(&b, "  %s:%s (no such tag) -> %s\n", repo, tag, want)
		default:
			fmt.Fprintf(&b, "  %s:%s %s -> %s\n", repo, tag, from, want)
		}
	}
	for _, a := range rt.Architectures {
		line(runtimes.ArchTag(version, a), tg.images[a].Digest)
	}
	line(version, tg.index.Digest)
	fmt.Fprintln(&b, "\nParameters:")
	for _, l := range paramLines {
		fmt.Fprintln(&b, "  "+strings.TrimPrefix(l, "parameter "))
	}
	fmt.Fprintf(&b, "\nHold: s3://%s/%s. The daily Publish leaves %s %s where it is now (its outcome is \"held\").\n", bucket, records.HoldKey(rt.Name, version), rt.Name, version)
	fmt.Fprintf(&b, "\nTo undo:\n  make resume RUNTIME=%s VERSION=%s\n", rt.Name, version)
	fmt.Fprintf(&b, "lifts the hold; the next pipeline execution then publishes %s %s again if its content differs from %s.\n", rt.Name, version, to)
	if previousDated != "" && previousDated != to {
		fmt.Fprintf(&b, "To point the tags back at once:\n  make rollback RUNTIME=%s VERSION=%s TO=%s\n", rt.Name, version, previousDated)
	}
	return b.String()
}
