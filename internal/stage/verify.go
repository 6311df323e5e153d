package stage

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/evergreen-images/evergreen/internal/awsops"
	"github.com/evergreen-images/evergreen/internal/records"
)

// baseNameLabel is the label BuildKit sets to the image a Dockerfile
// starts FROM.
const baseNameLabel = "org.opencontainers.image.base.name"

// Verify checks the image Build recorded for the entry and records that it
// passed, with what it holds and ECR's scans of it.
//
// It runs on the entry's own architecture (ARM_CONTAINER or
// LINUX_CONTAINER, no emulation), so an image built for the wrong platform
// fails here. It pulls the digest Build recorded, not the draft tag, so what
// it checks is what Publish will publish, whatever happens to the tag. The
// self-test gets the expected version and architecture from the pipeline,
// not from the image, so an image pushed under the wrong tag fails too.
// Verify reads ECR and writes only its record; an entry this execution
// already verified (a stage retry runs every entry again) is not run again.
func Verify(ctx context.Context, e Env, c Clients, out io.Writer) error {
	if err := e.require("verify", map[string]string{
		"PIPELINE_EXECUTION_ID": e.ExecutionID, "REGISTRY": e.Registry, "RECORDS_BUCKET": e.RecordsBucket,
		"RUNTIME": e.Runtime, "REPOSITORY": e.Repository, "VERSION": e.Version, "ARCH": e.Arch,
	}); err != nil {
		return err
	}
	entry := e.entry()
	fail := func(format string, a ...any) error { return fmt.Errorf("verify "+entry+": "+format, a...) }

	buildKey := records.BuildKey(e.ExecutionID, e.Runtime, e.Version, e.Arch)
	built, err := readBuild(ctx, c, buildKey)
	if err != nil {
		return fail("%v: retry the Verify stage", err)
	}
	if built == nil || built.Digest == "" {
		return fmt.Errorf("no Build record for %s in execution %s (%s): retry the Build stage first", entry, e.ExecutionID, c.Records.URL(buildKey))
	}
	image := e.Registry + "/" + e.Repository + "@" + built.Digest

	verifyKey := records.VerifyKey(e.ExecutionID, e.Runtime, e.Version, e.Arch)
	var prev records.Verify
	found, err := c.Records.GetJSON(ctx, verifyKey, &prev)
	if err != nil {
		return fail("%v: retry the Verify stage", err)
	}
	if found && prev.Digest == built.Digest && prev.Result == records.ResultPassed {
		fmt.Fprintf(out, "%s already passed its self-test in execution %s: not run again\n", image, e.ExecutionID)
		return nil
	}

	if err := ecrLogin(ctx, e, c, out); err != nil {
		return fail("%v", err)
	}
	pulled, err := c.Docker.Run(ctx, nil, "pull", "--platform", "linux/"+e.Arch, image)
	out.Write(pulled)
	if err != nil {
		return fail("pulling %s: %v: retry the Verify stage (the Build record names this digest, so it should be in %s)", image, err, e.Repository)
	}
	archOut, err := c.Docker.Run(ctx, nil, "image", "inspect", "--format", "{{.Architecture}}", image)
	if err != nil {
		return fail("inspecting %s: %v: retry the Verify stage", image, err)
	}
	if got := strings.TrimSpace(string(archOut)); got != e.Arch {
		// A retried Build keeps the draft it finds, so only a new
		// execution builds it again.
		return fail("%s is built for %s, expected %s: the build did not honour --platform linux/%s (a FROM --platform in runtimes/%s/Dockerfile?); fix it, then Release change", image, got, e.Arch, e.Arch, e.Runtime)
	}
	selfTest, err := c.Docker.Run(ctx, nil, "run", "--rm", "--platform", "linux/"+e.Arch,
		"--env", "EXPECTED_VERSION="+e.Version, "--env", "EXPECTED_ARCH="+e.Arch, "--entrypoint", "self-test", image)
	out.Write(selfTest)
	if err != nil {
		return fail("the self-test of %s failed: %v (its output is above); fix runtimes/%s, then Release change (retry the Verify stage if the failure was transient)", image, err, e.Runtime)
	}

	inv, err := inventory(ctx, e, c, out, image)
	if err != nil {
		return fail("%v", err)
	}

	// ECR's scan of the draft, and of the published image it would
	// replace, for the vulnerability gate in Publish; with signing on, the
	// draft's signature. Only Verify reads findings.
	s := newScanner(e, c, out)
	scan, err := s.draftScan(ctx, built.Digest, image)
	if err != nil {
		return err
	}
	published, err := s.publishedScan(ctx)
	if err != nil {
		return fail("%v", err)
	}
	var signing *records.Signing
	if e.Signing {
		if signing, err = s.signing(ctx, built.Digest, image); err != nil {
			return err
		}
	}

	// The Build record must still name what was verified: a Build retried
	// meanwhile may have pushed another image.
	again, err := readBuild(ctx, c, buildKey)
	if err != nil {
		return fail("%v: retry the Verify stage", err)
	}
	if again == nil || again.Digest != built.Digest {
		return fail("the Build record of %s changed while it was verified: retry the stage", entry)
	}
	rec := records.Verify{
		Build:         *again,
		Result:        records.ResultPassed,
		SelfTest:      records.ResultPassed,
		VerifiedAt:    records.Time(c.now()),
		VerifyBuildID: e.BuildID,
		Inventory:     inv,
		Scan:          scan,
		PublishedScan: published,
		Signing:       signing,
	}
	rec.SchemaVersion = records.SchemaVersion
	rec.Stage = "verify"
	if err := c.Records.PutJSON(ctx, verifyKey, rec); err != nil {
		return fail("%v: retry the Verify stage", err)
	}
	fmt.Fprintf(out, "verified %s\n", image)
	return nil
}

// readBuild reads Build's record; nil when there is none.
func readBuild(ctx context.Context, c Clients, key string) (*records.Build, error) {
	var b records.Build
	found, err := c.Records.GetJSON(ctx, key, &b)
	if err != nil || !found {
		return nil, err
	}
	if err := records.CheckSchema(c.Records.URL(key), b.SchemaVersion); err != nil {
		return nil, err
	}
	return &b, nil
}

// inventory takes the image's inventory inside it, on its own
// architecture, like the self-test: what dpkg, node and python report
// there is what the image holds (buildspecs/inventory.sh says what it
// lists); then the base image's digest and the recipe's hash.
func inventory(ctx context.Context, e Env, c Clients, out io.Writer, image string) (*records.Inventory, error) {
	start := c.now()
	script, err := os.ReadFile(filepath.Join(e.SourceDir, InventoryScript))
	if err != nil {
		return nil, fmt.Errorf("reading the inventory script: %v (run from the source artifact's root, or set CODEBUILD_SRC_DIR)", err)
	}
	tsv, err := c.Docker.Run(ctx, nil, "run", "--rm", "--platform", "linux/"+e.Arch, "--entrypoint", "sh", image, "-c", string(script))
	if err != nil {
		return nil, fmt.Errorf("taking the inventory of %s: %v: retry the Verify stage", image, err)
	}
	inv, err := ParseInventory(string(tsv))
	if err != nil {
		return nil, fmt.Errorf("the inventory of %s: %v", image, err)
	}

	label, err := c.Docker.Run(ctx, nil, "image", "inspect", "--format", `{{ index .Config.Labels "`+baseNameLabel+`" }}`, image)
	if err != nil {
		return nil, fmt.Errorf("reading the label %s of %s: %v", baseNameLabel, image, err)
	}
	inv.Base.Name = strings.TrimSpace(string(label))
	if inv.Base.Name == "<no value>" {
		inv.Base.Name = ""
	}
	if inv.Base.Name != "" {
		if inv.Base.Digest, err = baseDigest(ctx, c, inv.Base.Name, e.Arch); err != nil {
			return nil, err
		}
	}

	if inv.Recipe, err = RecipeHash(filepath.Join(e.SourceDir, "runtimes", e.Runtime)); err != nil {
		return nil, err
	}
	inv.Seconds = int(c.now().Sub(start).Seconds())
	runtimesText := []string{}
	for _, k := range slices.Sorted(maps.Keys(inv.Runtime)) {
		runtimesText = append(runtimesText, k+" "+inv.Runtime[k])
	}
	fmt.Fprintf(out, "inventory of %s: %d OS packages, runtime %s, %d global npm packages, %d Python distributions, base %s, in %d s\n",
		image, len(inv.OS), strings.Join(runtimesText, ", "), len(inv.Npm), len(inv.Pip), inv.Base.Digest, inv.Seconds)
	return inv, nil
}

// baseDigest is the base image's digest for arch, read from its registry
// now, minutes after Build pulled it, through `docker buildx imagetools
// inspect --raw` (the rehearsal maps the base registries there): the
// linux/<arch> child of an index, else the digest of the manifest itself.
// The packages are read from the image itself, so a base that moved in
// between shows as a changed base digest with no package change, never as
// a missed change. A failed or empty lookup fails the entry: the digest of
// an empty answer would pass for a change.
func baseDigest(ctx context.Context, c Clients, name, arch string) (string, error) {
	raw, err := c.Docker.Run(ctx, nil, "buildx", "imagetools", "inspect", "--raw", name)
	if err != nil || len(raw) == 0 {
		why := "an empty answer"
		if err != nil {
			why = err.Error()
		}
		return "", fmt.Errorf("could not read the base image %s from its registry (%s): retry the stage", name, why)
	}
	var idx struct {
		Manifests []struct {
			Digest   string `json:"digest"`
			Platform *struct {
				OS           string `json:"os"`
				Architecture string `json:"architecture"`
			} `json:"platform"`
		} `json:"manifests"`
	}
	if json.Unmarshal(raw, &idx) == nil {
		for _, m := range idx.Manifests {
			if m.Platform != nil && m.Platform.OS == "linux" && m.Platform.Architecture == arch && m.Digest != "" {
				return m.Digest, nil
			}
		}
	}
	return awsops.SHA256(raw), nil
}
