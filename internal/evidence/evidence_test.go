package evidence

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	slsa "github.com/in-toto/attestation/go/predicates/provenance/v1"
	intoto "github.com/in-toto/attestation/go/v1"
	"github.com/package-url/packageurl-go"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/evergreen-images/evergreen/config"
	"github.com/evergreen-images/evergreen/internal/records"
)

const (
	sampleDir = "../../testdata/evidence"
	schemaDir = "../../testdata/schemas/cyclonedx"
)

func sampleInput(t testing.TB) SampleInput {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(sampleDir, "input.json"))
	if err != nil {
		t.Fatal(err)
	}
	var in SampleInput
	if err := json.Unmarshal(b, &in); err != nil {
		t.Fatal(err)
	}
	return in
}

func sample(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(sampleDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// cyclonedxSchema compiles CycloneDX's published bom-1.6 schema from the
// committed copies, offline: the two schemas it references are loaded from
// their files under their $id, so nothing is fetched.
func cyclonedxSchema(t testing.TB) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	for _, name := range []string{"bom-1.6.schema.json", "spdx.schema.json", "jsf-0.82.schema.json"} {
		f, err := os.Open(filepath.Join(schemaDir, name))
		if err != nil {
			t.Fatal(err)
		}
		doc, err := jsonschema.UnmarshalJSON(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := c.AddResource("http://cyclonedx.org/schema/"+name, doc); err != nil {
			t.Fatal(err)
		}
	}
	s, err := c.Compile("http://cyclonedx.org/schema/bom-1.6.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func validateSBOM(t *testing.T, s *jsonschema.Schema, name string, doc []byte) {
	t.Helper()
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if err := s.Validate(inst); err != nil {
		t.Errorf("%s does not validate against CycloneDX's bom-1.6 schema: %v", name, err)
	}
}

// variants are the sample image as other distros (and an unknown one)
// would have it, so the schema check covers every purl form.
func variants(in SampleInput) map[string]Image {
	with := func(change func(inv *records.Inventory)) Image {
		img, inv := in.Image, *in.Image.Inventory
		change(&inv)
		img.Inventory = &inv
		return img
	}
	return map[string]Image{
		"alpine": with(func(inv *records.Inventory) {
			inv.Distro, inv.PackageManager, inv.OSArch = &records.Distro{ID: "alpine", VersionID: "3.22.1"}, "apk", nil
		}),
		"distro unknown":                        with(func(inv *records.Inventory) { inv.Distro = nil }),
		"recorded before package architectures": with(func(inv *records.Inventory) { inv.OSArch, inv.PackageManager = nil, "" }),
		"no base label":                         with(func(inv *records.Inventory) { inv.Base = records.Base{} }),
	}
}

func TestSBOMValidatesAgainstCycloneDXSchema(t *testing.T) {
	s := cyclonedxSchema(t)
	validateSBOM(t, s, SampleSBOM, sample(t, SampleSBOM))
	in := sampleInput(t)
	for name, img := range variants(in) {
		doc, err := SBOM(img, in.Build)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		validateSBOM(t, s, name, doc)
	}
	// The schema does catch a broken SBOM: a component without its type.
	bad := bytes.Replace(sample(t, SampleSBOM), []byte(`"type": "library",`), nil, 1)
	inst, _ := jsonschema.UnmarshalJSON(bytes.NewReader(bad))
	if s.Validate(inst) == nil {
		t.Error("a component without a type validated: the schema check checks nothing")
	}
}

// Every inventory item is a component with its version and a Package URL
// that parses back to it; the base image is a container component with its
// digest; the image is metadata.component.
func TestSBOMListsEveryInventoryItemWithItsPackageURL(t *testing.T) {
	in := sampleInput(t)
	var bom cdx.BOM
	if err := cdx.NewBOMDecoder(bytes.NewReader(sample(t, SampleSBOM)), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
		t.Fatal(err)
	}
	byItem := map[string]cdx.Component{}
	for _, c := range *bom.Components {
		if c.Type != cdx.ComponentTypeOS && c.PackageURL == "" {
			t.Errorf("component %s has no purl", c.Name)
		}
		byItem[c.Name+"@"+c.Version] = c
	}
	inv, img := in.Image.Inventory, in.Image
	// What each kind's purl is, by the purl types' own rules.
	wantType := map[string]string{"os": "deb", "npm": "npm", "pip": "pypi"}
	n := 0
	for _, kind := range records.Kinds {
		for name, version := range inv.Items(kind) {
			n++
			c, ok := byItem[name+"@"+version]
			if !ok {
				t.Errorf("%s %s %s is not in the SBOM", kind, name, version)
				continue
			}
			p, err := packageurl.FromString(c.PackageURL)
			if err != nil {
				t.Errorf("%s %s: purl %q does not parse: %v", kind, name, c.PackageURL, err)
				continue
			}
			gotName := p.Name
			if p.Namespace != "" && p.Type == "npm" {
				gotName = p.Namespace + "/" + p.Name
			}
			if p.Version != version || !strings.EqualFold(gotName, name) && gotName != strings.ToLower(strings.ReplaceAll(name, "_", "-")) {
				t.Errorf("%s %s %s: purl %s names %s %s", kind, name, version, c.PackageURL, gotName, p.Version)
			}
			if want, ok := wantType[kind]; ok && p.Type != want {
				t.Errorf("%s %s: purl type %s, want %s", kind, name, p.Type, want)
			}
			if kind == "os" {
				q := p.Qualifiers.Map()
				arch := img.Arch
				if a, ok := inv.OSArch[name]; ok {
					arch = a
				}
				if p.Namespace != inv.Distro.ID || q["arch"] != arch || q["distro"] != inv.Distro.ID+"-"+inv.Distro.VersionID {
					t.Errorf("os %s: purl %s, want namespace %s, arch %s, distro %s-%s", name, c.PackageURL, inv.Distro.ID, arch, inv.Distro.ID, inv.Distro.VersionID)
				}
			}
		}
	}
	// npm and pip are runtimes and packages both: listed once.
	dupes := 0
	for name, v := range inv.Runtime {
		if inv.Npm[name] == v || inv.Pip[name] == v {
			dupes++
		}
	}
	extra := 1 // the base image
	if inv.Distro != nil {
		extra++ // the operating-system component
	}
	if got, want := len(*bom.Components), n-dupes+extra; got != want {
		t.Errorf("%d components, want %d (%d inventory items, %d listed under two kinds, the base image and the OS)", got, want, n, dupes)
	}
	var base *cdx.Component
	for _, c := range *bom.Components {
		if c.Type == cdx.ComponentTypeContainer {
			base = &c
		}
	}
	if base == nil || base.Name != inv.Base.Name || base.Hashes == nil || (*base.Hashes)[0] != (cdx.Hash{Algorithm: cdx.HashAlgoSHA256, Value: strings.TrimPrefix(inv.Base.Digest, "sha256:")}) {
		t.Errorf("base component %+v, want %s with SHA-256 %s", base, inv.Base.Name, inv.Base.Digest)
	} else if p, err := packageurl.FromString(base.PackageURL); err != nil || p.Type != "oci" || p.Version != inv.Base.Digest ||
		p.Qualifiers.Map()["repository_url"] != strings.Split(inv.Base.Name, ":")[0] {
		t.Errorf("base purl %s (%v), want pkg:oci with version %s and the repository of %s", base.PackageURL, err, inv.Base.Digest, inv.Base.Name)
	}
	m := bom.Metadata.Component
	if m.Type != cdx.ComponentTypeContainer || m.Name != img.Repository || (*m.Hashes)[0].Value != strings.TrimPrefix(img.Digest, "sha256:") {
		t.Errorf("metadata.component %+v, want the image %s@%s", m, img.Repository, img.Digest)
	}
	if bom.Metadata.Timestamp != records.Time(in.Build.FinishedOn) {
		t.Errorf("timestamp %s, want the build's end %s", bom.Metadata.Timestamp, records.Time(in.Build.FinishedOn))
	}
	if !slices.IsSortedFunc(*bom.Components, func(a, b cdx.Component) int { return strings.Compare(a.BOMRef, b.BOMRef) }) {
		t.Error("components are not sorted")
	}
}

// The Package URLs are packageurl-go's, with each ecosystem's rules.
func TestPackageURLsFollowEachEcosystem(t *testing.T) {
	debian := &records.Distro{ID: "debian", VersionID: "13", Codename: "trixie"}
	alpine := &records.Distro{ID: "alpine", VersionID: "3.22.1"}
	// osPurl of one package, of an inventory with d and, unless empty, the
	// package's own architecture.
	op := func(d *records.Distro, pkgArch, arch, name, version string) (string, error) {
		inv := &records.Inventory{Distro: d}
		if pkgArch != "" {
			inv.OSArch = map[string]string{name: pkgArch}
		}
		return osPurl(inv, arch, name, version)
	}
	for _, c := range []struct {
		name string
		got  func() (string, error)
		want string
	}{
		{"the issue's example", func() (string, error) { return op(debian, "", "amd64", "openssl", "3.5.1-1") }, "pkg:deb/debian/openssl@3.5.1-1?arch=amd64&distro=debian-13"},
		{"a Debian version with + and an epoch", func() (string, error) { return op(debian, "", "arm64", "git", "1:2.47.3-0+deb13u1") }, "pkg:deb/debian/git@1:2.47.3-0%2Bdeb13u1?arch=arm64&distro=debian-13"},
		{"a name with +", func() (string, error) { return op(debian, "", "amd64", "g++", "4:14.2.0-1") }, "pkg:deb/debian/g%2B%2B@4:14.2.0-1?arch=amd64&distro=debian-13"},
		{"ubuntu", func() (string, error) {
			return op(&records.Distro{ID: "ubuntu", VersionID: "24.04", Codename: "noble"}, "", "amd64", "libc6", "2.39-0ubuntu8")
		}, "pkg:deb/ubuntu/libc6@2.39-0ubuntu8?arch=amd64&distro=ubuntu-24.04"},
		{"alpine, with apk's architecture", func() (string, error) { return op(alpine, "", "amd64", "musl", "1.2.5-r10") }, "pkg:apk/alpine/musl@1.2.5-r10?arch=x86_64&distro=alpine-3.22.1"},
		{"alpine arm64", func() (string, error) { return op(alpine, "", "arm64", "musl", "1.2.5-r10") }, "pkg:apk/alpine/musl@1.2.5-r10?arch=aarch64&distro=alpine-3.22.1"},
		{"distro unknown: no vendor, no distro", func() (string, error) { return op(nil, "", "amd64", "openssl", "3.5.1-1") }, "pkg:deb/openssl@3.5.1-1?arch=amd64"},
		{"an architecture-independent Debian package", func() (string, error) { return op(debian, "all", "arm64", "tzdata", "2025b-4") }, "pkg:deb/debian/tzdata@2025b-4?arch=all&distro=debian-13"},
		{"an architecture-independent Alpine package", func() (string, error) {
			return op(alpine, "noarch", "arm64", "ca-certificates-bundle", "20250619-r0")
		}, "pkg:apk/alpine/ca-certificates-bundle@20250619-r0?arch=noarch&distro=alpine-3.22.1"},
		{"a scoped npm package", func() (string, error) { return npmPurl("@angular/cli", "19.0.0") }, "pkg:npm/%40angular/cli@19.0.0"},
		{"pypi's name rules", func() (string, error) { return purl("pypi", "", "Typing_Extensions", "4.16.0", nil) }, "pkg:pypi/typing-extensions@4.16.0"},
		{"the npm runtime", func() (string, error) { return runtimePurl("npm", "10.9.9") }, "pkg:npm/npm@10.9.9"},
		{"node", func() (string, error) { return runtimePurl("node", "22.23.3") }, "pkg:generic/node@22.23.3"},
		{"a base image", func() (string, error) {
			return ociPurl("public.ecr.aws/docker/library/node:22-trixie", "sha256:"+strings.Repeat("ab", 32), "arm64")
		}, "pkg:oci/node@sha256:" + strings.Repeat("ab", 32) + "?arch=arm64&repository_url=public.ecr.aws%2Fdocker%2Flibrary%2Fnode&tag=22-trixie"},
		{"a registry with a port", func() (string, error) {
			return ociPurl("127.0.0.1:5000/base/Node@sha256:00", "sha256:"+strings.Repeat("cd", 32), "amd64")
		}, "pkg:oci/node@sha256:" + strings.Repeat("cd", 32) + "?arch=amd64&repository_url=127.0.0.1:5000%2Fbase%2FNode"},
	} {
		got, err := c.got()
		if err != nil || got != c.want {
			t.Errorf("%s: %s, %v; want %s", c.name, got, err, c.want)
		}
	}
}

// Same input, same bytes; the serial number is a name-based UUID of the
// digest, so two images have two.
func TestSBOMIsReproducible(t *testing.T) {
	in := sampleInput(t)
	a, err := SBOM(in.Image, in.Build)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := SBOM(in.Image, in.Build)
	if !bytes.Equal(a, b) {
		t.Error("two SBOMs of the same image differ")
	}
	other := in.Image
	other.Digest = "sha256:" + strings.Repeat("0", 64)
	c, _ := SBOM(other, in.Build)
	serial := func(doc []byte) string {
		var v struct{ SerialNumber string }
		json.Unmarshal(doc, &v)
		return v.SerialNumber
	}
	if serial(a) == serial(c) || !strings.HasPrefix(serial(a), "urn:uuid:") || serial(a)[9+14] != '5' {
		t.Errorf("serial numbers %s and %s: want distinct urn:uuid version 5", serial(a), serial(c))
	}
}

// RFC 9562's name-based UUID, checked against the value Python's uuid.uuid5
// gives for the same name (uuid5(NAMESPACE_DNS, "python.org")).
func TestUUIDv5IsRFC9562s(t *testing.T) {
	dns := uuid{0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8}
	if got := uuidV5(dns, "python.org").String(); got != "886313e1-3b8a-5372-9b90-0c9aee199e5d" {
		t.Errorf("uuidV5 = %s", got)
	}
}

// The provenance passes the in-toto types' own checks, for the Statement
// and for the SLSA provenance predicate, and says what the build was.
func TestProvenanceValidatesWithInTotoTypes(t *testing.T) {
	in := sampleInput(t)
	st := &intoto.Statement{}
	if err := protojson.Unmarshal(sample(t, SampleProvenance), st); err != nil {
		t.Fatal(err)
	}
	if err := st.Validate(); err != nil {
		t.Errorf("Statement.Validate: %v", err)
	}
	b, _ := protojson.Marshal(st.GetPredicate())
	pred := &slsa.Provenance{}
	if err := protojson.Unmarshal(b, pred); err != nil {
		t.Fatal(err)
	}
	if err := pred.Validate(); err != nil {
		t.Errorf("Provenance.Validate: %v", err)
	}
	if st.GetType() != intoto.StatementTypeUri || st.GetPredicateType() != PredicateSLSAProvenance {
		t.Errorf("type %s, predicate type %s", st.GetType(), st.GetPredicateType())
	}
	if d := st.GetSubject()[0].GetDigest()["sha256"]; "sha256:"+d != in.Image.Digest {
		t.Errorf("subject sha256 %s, want the image %s", d, in.Image.Digest)
	}
	def, run := pred.GetBuildDefinition(), pred.GetRunDetails()
	ext := def.GetExternalParameters().AsMap()
	for k, want := range map[string]string{"runtime": in.Image.Runtime, "version": in.Image.Version, "architecture": in.Image.Arch, "dockerfile": in.Build.Dockerfile} {
		if ext[k] != want {
			t.Errorf("externalParameters.%s = %v, want %s", k, ext[k], want)
		}
	}
	if def.GetBuildType() != in.Build.BuildType || run.GetBuilder().GetId() != in.Build.BuilderID || run.GetMetadata().GetInvocationId() != in.Build.BuildID ||
		!run.GetMetadata().GetStartedOn().AsTime().Equal(in.Build.StartedOn) || !run.GetMetadata().GetFinishedOn().AsTime().Equal(in.Build.FinishedOn) {
		t.Errorf("build type %s, builder %s, run %v; want the build %+v", def.GetBuildType(), run.GetBuilder().GetId(), run.GetMetadata(), in.Build)
	}
	deps := def.GetResolvedDependencies()
	if len(deps) != 2 || deps[0].GetDigest()["gitCommit"] != in.Build.SourceRevision || deps[0].GetUri() != in.Build.SourceRepository ||
		deps[1].GetName() != in.Image.Inventory.Base.Name || "sha256:"+deps[1].GetDigest()["sha256"] != in.Image.Inventory.Base.Digest {
		t.Errorf("resolved dependencies %v, want the source at %s and the base %s@%s", deps, in.Build.SourceRevision, in.Image.Inventory.Base.Name, in.Image.Inventory.Base.Digest)
	}
}

// The provenance is SLSA's and in-toto's JSON: field names as their specs
// spell them (protojson's camelCase, _type), no proto field names.
func TestProvenanceUsesTheSpecsFieldNames(t *testing.T) {
	var v map[string]any
	if err := json.Unmarshal(sample(t, SampleProvenance), &v); err != nil {
		t.Fatal(err)
	}
	if got := slices.Sorted(maps.Keys(v)); !slices.Equal(got, []string{"_type", "predicate", "predicateType", "subject"}) {
		t.Errorf("top-level fields %v", got)
	}
	pred := v["predicate"].(map[string]any)
	if _, ok := pred["buildDefinition"].(map[string]any)["resolvedDependencies"]; !ok {
		t.Errorf("predicate %v has no buildDefinition.resolvedDependencies", pred)
	}
}

// A source revision that is no git commit (the pipeline's S3 source
// object's version) travels as an annotation, and reads back.
func TestProvenanceCarriesANonGitRevision(t *testing.T) {
	in := sampleInput(t)
	b := in.Build
	b.SourceRepository, b.SourceRevision = "s3://evergreen-source/source.zip", "3sL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY"
	doc, err := Provenance(in.Image, b)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Read(ArtifactProvenance, doc)
	if err != nil || s.SourceRevision != b.SourceRevision {
		t.Errorf("source revision %q, %v; want %s", s.SourceRevision, err, b.SourceRevision)
	}
}

// Read returns what `evergreen verify` cross-checks, the same from every
// document about the same image.
func TestReadReturnsWhatVerifyCrossChecks(t *testing.T) {
	in := sampleInput(t)
	sb, err := Read(ArtifactSBOM, sample(t, SampleSBOM))
	if err != nil {
		t.Fatal(err)
	}
	pv, err := Read(ArtifactProvenance, sample(t, SampleProvenance))
	if err != nil {
		t.Fatal(err)
	}
	base := in.Image.Inventory.Base
	for _, s := range []Summary{sb, pv} {
		if s.Subject != in.Image.Digest || s.SourceRevision != in.Build.SourceRevision || s.BaseName != base.Name || s.BaseDigest != base.Digest {
			t.Errorf("%s: subject %s, revision %s, base %s@%s; want %s, %s, %s@%s", s.Kind, s.Subject, s.SourceRevision, s.BaseName, s.BaseDigest,
				in.Image.Digest, in.Build.SourceRevision, base.Name, base.Digest)
		}
	}
	if sb.Kind != KindSBOM || sb.Packages != strings.Count(string(sample(t, SampleSBOM)), `"bom-ref"`)-1 {
		t.Errorf("sbom summary %+v", sb)
	}
	if pv.Kind != KindProvenance || pv.Builder != in.Build.BuilderID {
		t.Errorf("provenance builder %s, want %s", pv.Builder, in.Build.BuilderID)
	}
	vd, err := Read(ArtifactVerdict, sample(t, SampleVerdict))
	if err != nil {
		t.Fatal(err)
	}
	v := in.Verdict
	var fixed, introduced []string
	images := map[string]string{}
	for _, im := range v.Images {
		images[im.Arch] = im.Digest
		for _, c := range im.Vulnerabilities.Fixed {
			if !slices.Contains(fixed, c.ID) {
				fixed = append(fixed, c.ID)
			}
		}
		for _, c := range im.Vulnerabilities.Introduced {
			introduced = append(introduced, c.ID)
		}
	}
	slices.Sort(fixed)
	if vd.Kind != KindVerdict || vd.Subject != v.Index || vd.Result != v.Result || vd.Gate != v.Gate.Setting+": "+v.Gate.Result ||
		vd.SourceRevision != v.SourceRevision || !maps.Equal(vd.Images, images) || !slices.Equal(vd.Fixed, fixed) || len(vd.Introduced) != len(introduced) {
		t.Errorf("verdict summary %+v; want index %s, result %s, images %v, fixed %v", vd, v.Index, v.Result, images, fixed)
	}
	if images[in.Image.Arch] != in.Image.Digest {
		t.Errorf("the sample verdict's %s image is %s, not the sample image %s", in.Image.Arch, images[in.Image.Arch], in.Image.Digest)
	}
}

// Read refuses a document that is not what its artifact type says, naming
// what is wrong.
func TestReadRefusesMisshapenDocuments(t *testing.T) {
	sbomDoc, provDoc, verdictDoc := sample(t, SampleSBOM), sample(t, SampleProvenance), sample(t, SampleVerdict)
	for _, c := range []struct {
		name, artifactType string
		doc                []byte
		want               string
	}{
		{"an unknown artifact type", "application/json", verdictDoc, "not evidence"},
		{"an SBOM read as provenance", ArtifactProvenance, sbomDoc, "not an in-toto Statement"},
		{"provenance read as an SBOM", ArtifactSBOM, provDoc, "not CycloneDX 1.6"},
		{"an SBOM of another spec version", ArtifactSBOM, bytes.Replace(sbomDoc, []byte(`"specVersion": "1.6"`), []byte(`"specVersion": "1.5"`), 1), "not CycloneDX 1.6"},
		{"an SBOM without its image", ArtifactSBOM, []byte(`{"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1}`), "no metadata.component"},
		{"an SBOM whose image has no digest", ArtifactSBOM, bytes.Replace(sbomDoc, []byte(`"alg": "SHA-256"`), []byte(`"alg": "SHA-512"`), 1), "no SHA-256 hash"},
		{"another predicate", ArtifactProvenance, bytes.Replace(provDoc, []byte(PredicateSLSAProvenance), []byte("https://slsa.dev/provenance/v0.2"), 1), "predicate type"},
		{"a Statement without its subject's digest", ArtifactProvenance, bytes.Replace(provDoc, []byte(`"sha256": "`+strings.TrimPrefix(sampleInput(t).Image.Digest, "sha256:")), []byte(`"sha256": "00`), 1), "digest"},
		{"a verdict with a field this code does not know", ArtifactVerdict, bytes.Replace(verdictDoc, []byte(`"result": "published"`), []byte(`"outcome": "published"`), 1), "unknown field"},
		{"a verdict of another type", ArtifactVerdict, bytes.Replace(verdictDoc, []byte(ArtifactVerdict), []byte("application/vnd.other+json"), 1), "type"},
	} {
		_, err := Read(c.artifactType, c.doc)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error saying %q", c.name, err, c.want)
		}
	}
}

// The functions refuse inputs that would make evidence about nothing.
func TestDocumentsRefuseIncompleteInput(t *testing.T) {
	in := sampleInput(t)
	noDigest := in.Image
	noDigest.Digest = "latest"
	noInventory := in.Image
	noInventory.Inventory = nil
	noBuilder := in.Build
	noBuilder.BuilderID = ""
	badVerdict := in.Verdict
	badVerdict.Images = append(slices.Clone(badVerdict.Images), badVerdict.Images[0])
	for _, c := range []struct {
		name string
		err  error
		want string
	}{
		{"an SBOM without a digest", second(SBOM(noDigest, in.Build)), "not a sha256"},
		{"an SBOM without an inventory", second(SBOM(noInventory, in.Build)), "no inventory"},
		{"provenance without a builder", second(Provenance(in.Image, noBuilder)), "builder id"},
		{"a verdict listing an architecture twice", second(VerdictDocument(badVerdict)), "twice"},
	} {
		if c.err == nil || !strings.Contains(c.err.Error(), c.want) {
			t.Errorf("%s: %v, want an error saying %q", c.name, c.err, c.want)
		}
	}
}

func second(_ []byte, err error) error { return err }

// The verdict of a Publish record: the images published and those they
// replaced, the record's deltas, and the gate's result.
func TestVerdictFromPublishRecord(t *testing.T) {
	d := func(c string) string { return "sha256:" + strings.Repeat(c, 64) }
	vulns := &records.Vulnerabilities{Counts: map[string]int{"HIGH": 1}, PreviousCounts: map[string]int{"CRITICAL": 1, "HIGH": 1},
		Fixed: []records.CVE{{ID: "CVE-2026-0001", Severity: "CRITICAL", Package: "libssl3t64"}}, Introduced: []records.CVE{}}
	changes := &records.Changes{PreviousKnown: true, Added: []records.Item{}, Removed: []records.Item{},
		Upgraded: []records.Upgrade{{Kind: "os", Name: "libssl3t64", From: "3.5.1-1", To: "3.5.9-1"}}}
	p := &records.Publish{Result: records.ResultPublished, ExecutionID: "exec-1", Runtime: "node", Version: "22",
		Registry: "123456789012.dkr.ecr.eu-west-1.amazonaws.com", Repository: "node", Index: d("1"), DatedTag: "22-2026-12-01",
		Images:   map[string]string{"arm64": d("3"), "amd64": d("2")},
		Previous: &records.Set{Index: d("4"), Images: map[string]string{"amd64": d("5"), "arm64": d("6")}},
		Changes:  map[string]*records.Changes{"amd64": changes}, Vulnerabilities: map[string]*records.Vulnerabilities{"amd64": vulns},
		CheckedAt: "2026-12-01T04:31:05Z"}
	gate, _ := config.ParseGateEnv("never-worse")
	v := VerdictFrom(p, gate, "abc")
	if v.Repository != p.Registry+"/"+p.Repository || v.Index != p.Index || v.PreviousIndex != p.Previous.Index || v.SourceRevision != "abc" ||
		v.Gate.Setting != "never-worse" || v.Gate.Result != GatePassed || v.Gate.BlockedBy == nil || len(v.Gate.BlockedBy) != 0 {
		t.Errorf("verdict %+v", v)
	}
	if len(v.Images) != 2 || v.Images[0].Arch != "amd64" || v.Images[0].Digest != p.Images["amd64"] || v.Images[0].Previous != p.Previous.Images["amd64"] ||
		v.Images[0].Changes != changes || v.Images[0].Vulnerabilities != vulns || v.Images[1].Digest != p.Images["arm64"] {
		t.Errorf("images %+v, want amd64 then arm64 with the record's digests and deltas", v.Images)
	}
	doc, err := VerdictDocument(v)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Read(ArtifactVerdict, doc)
	if err != nil || !slices.Equal(s.Fixed, []string{"CVE-2026-0001"}) || s.Gate != "never-worse: passed" || !maps.Equal(s.Images, p.Images) {
		t.Errorf("read back %+v, %v", s, err)
	}

	blocked := *p
	blocked.Result, blocked.BlockedBy, blocked.BlockedImages = records.ResultBlocked, []string{"amd64: HIGH 0 -> 1; new: CVE-2026-9"}, map[string]string{"amd64": d("7")}
	v = VerdictFrom(&blocked, gate, "abc")
	if v.Gate.Result != GateBlocked || !slices.Equal(v.Gate.BlockedBy, blocked.BlockedBy) || len(v.Images) != 1 || v.Images[0].Digest != d("7") || v.Images[0].Previous != p.Images["amd64"] {
		t.Errorf("blocked verdict %+v", v)
	}
	off, _ := config.ParseGateEnv("off")
	if v := VerdictFrom(p, off, "abc"); v.Gate.Result != GateOff {
		t.Errorf("gate off: %+v", v.Gate)
	}
}

// repoRoot is the repository's root, found from the test's directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// cyclonedxPython validates the SBOM with cyclonedx-python-lib's strict
// JSON validator, deserializes it with the library's model, and prints
// what the model holds, each purl parsed by packageurl-python.
const cyclonedxPython = `
import json, sys
from cyclonedx.model.bom import Bom
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
data = sys.stdin.read()
err = JsonStrictValidator(SchemaVersion.V1_6).validate_str(data)
if err is not None:
    sys.exit("cyclonedx-python-lib: the SBOM does not validate: %s" % err)
bom = Bom.from_json(json.loads(data))
def p(u):
    return None if u is None else {"type": u.type, "namespace": u.namespace or "", "name": u.name, "version": u.version or "", "qualifiers": u.qualifiers or {}}
print(json.dumps({
    "serial": str(bom.serial_number),
    "subject": p(bom.metadata.component.purl),
    "components": [{"name": c.name, "version": c.version or "", "purl": p(c.purl)} for c in bom.components],
}))
`

type pyPurl struct {
	Type, Namespace, Name, Version string
	Qualifiers                     map[string]string
}

// An independent parser from a registry (PyPI cyclonedx-python-lib,
// CycloneDX's own Python library) validates and reads the sample SBOM, and
// sees every component and Package URL as this code wrote them.
func TestSBOMReadsBackWithCycloneDXPythonLib(t *testing.T) {
	python := filepath.Join(repoRoot(t), ".venv", "bin", "python")
	if err := exec.Command(python, "-c", "import cyclonedx.validation.json").Run(); err != nil {
		msg := "cyclonedx-python-lib is not in .venv (" + err.Error() + "): run .ci/install-moto.sh"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	doc := sample(t, SampleSBOM)
	cmd := exec.Command(python, "-c", cyclonedxPython)
	cmd.Stdin = bytes.NewReader(doc)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%v: %s", err, stderr.String())
	}
	t.Logf("cyclonedx-python-lib validated and read %d bytes in %s", len(doc), time.Since(start).Round(time.Millisecond))
	var got struct {
		Serial     string
		Subject    *pyPurl
		Components []struct {
			Name, Version string
			Purl          *pyPurl
		}
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	var bom cdx.BOM
	if err := cdx.NewBOMDecoder(bytes.NewReader(doc), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
		t.Fatal(err)
	}
	if "urn:uuid:"+got.Serial != bom.SerialNumber {
		t.Errorf("serial %s, want %s", got.Serial, bom.SerialNumber)
	}
	asPy := func(s string) *pyPurl {
		if s == "" {
			return nil
		}
		p, err := packageurl.FromString(s)
		if err != nil {
			t.Fatal(err)
		}
		return &pyPurl{p.Type, p.Namespace, p.Name, p.Version, p.Qualifiers.Map()}
	}
	same := func(a, b *pyPurl) bool {
		if a == nil || b == nil {
			return a == b
		}
		return a.Type == b.Type && a.Namespace == b.Namespace && a.Name == b.Name && a.Version == b.Version && maps.Equal(a.Qualifiers, b.Qualifiers)
	}
	if want := asPy(bom.Metadata.Component.PackageURL); !same(got.Subject, want) {
		t.Errorf("subject purl %+v, want %+v", got.Subject, want)
	}
	if len(got.Components) != len(*bom.Components) {
		t.Fatalf("cyclonedx-python-lib reads %d components, the SBOM lists %d", len(got.Components), len(*bom.Components))
	}
	want := map[string]*pyPurl{}
	for _, c := range *bom.Components {
		want[c.Name+"@"+c.Version] = asPy(c.PackageURL)
	}
	for _, c := range got.Components {
		w, ok := want[c.Name+"@"+c.Version]
		if !ok || !same(c.Purl, w) {
			t.Errorf("%s %s: cyclonedx-python-lib reads purl %+v, this code wrote %+v", c.Name, c.Version, c.Purl, w)
		}
	}
}

// The samples' sizes and how long each takes to make, logged for the
// report (go test -run TestDocumentSizes -v ./internal/evidence).
func TestDocumentSizes(t *testing.T) {
	in := sampleInput(t)
	for _, c := range []struct {
		name string
		make func() ([]byte, error)
	}{
		{SampleSBOM, func() ([]byte, error) { return SBOM(in.Image, in.Build) }},
		{SampleProvenance, func() ([]byte, error) { return Provenance(in.Image, in.Build) }},
		{SampleVerdict, func() ([]byte, error) { return VerdictDocument(in.Verdict) }},
	} {
		start := time.Now()
		doc, err := c.make()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d bytes, %d inventory items, made in %s", c.name, len(doc), in.Image.Inventory.Count(), time.Since(start).Round(time.Microsecond))
	}
}

func BenchmarkSBOM(b *testing.B) {
	in := sampleInput(b)
	for b.Loop() {
		if _, err := SBOM(in.Image, in.Build); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkProvenance(b *testing.B) {
	in := sampleInput(b)
	for b.Loop() {
		if _, err := Provenance(in.Image, in.Build); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerdictDocument(b *testing.B) {
	in := sampleInput(b)
	for b.Loop() {
		if _, err := VerdictDocument(in.Verdict); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRead(b *testing.B) {
	docs := map[string][]byte{ArtifactSBOM: sample(b, SampleSBOM), ArtifactProvenance: sample(b, SampleProvenance), ArtifactVerdict: sample(b, SampleVerdict)}
	for b.Loop() {
		for typ, doc := range docs {
			if _, err := Read(typ, doc); err != nil {
				b.Fatal(errors.New(typ + ": " + err.Error()))
			}
		}
	}
}
