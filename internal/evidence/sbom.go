package evidence

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strings"

	cdx "github.com/CycloneDX/cyclonedx-go"

	"github.com/evergreen-images/evergreen/internal/records"
)

// SBOM properties: what the image is, by this project's names, so that
// `evergreen verify` cross-checks the SBOM with the provenance and the
// records. CycloneDX reserves the cdx: prefix; ours is evergreen:.
const (
	PropertySourceRevision = "evergreen:source-revision"
	PropertyRuntime        = "evergreen:runtime"
	PropertyVersion        = "evergreen:version"
	PropertyArch           = "evergreen:arch"
	PropertyRecipe         = "evergreen:recipe"
	PropertyExecutionID    = "evergreen:execution-id"
	PropertyBuildID        = "evergreen:build-id"
)

// sbomNamespace is the UUID v5 namespace of the SBOMs' serial numbers:
// one SBOM per image digest, so a regenerated SBOM keeps its serial.
var sbomNamespace = uuidV5(uuidNamespaceURL, "https://github.com/evergreen-images/evergreen/sbom")

// SBOM is the image's CycloneDX 1.6 JSON SBOM: every item of Verify's
// inventory (OS packages, runtimes, global npm and pip packages) with its
// version and Package URL, and the base image as a container component
// with its digest. The image itself is metadata.component.
func SBOM(img Image, b Build) ([]byte, error) {
	if err := img.check(); err != nil {
		return nil, fmt.Errorf("SBOM: %w", err)
	}
	inv := img.Inventory
	self, err := ociPurl(img.Repository, img.Digest, img.Arch)
	if err != nil {
		return nil, err
	}
	var components []cdx.Component
	seen := map[string]bool{}
	for _, kind := range records.Kinds {
		items := inv.Items(kind)
		for _, name := range slices.Sorted(maps.Keys(items)) {
			c, err := inventoryComponent(img, kind, name, items[name])
			if err != nil {
				return nil, fmt.Errorf("SBOM of %s@%s: %w", img.Repository, img.Digest, err)
			}
			// npm and pip are runtimes and packages both: one component,
			// listed under the first kind (records.Kinds' order).
			if seen[c.BOMRef] {
				continue
			}
			seen[c.BOMRef] = true
			components = append(components, c)
		}
	}
	if inv.Base.Name != "" {
		c := cdx.Component{Type: cdx.ComponentTypeContainer, Name: inv.Base.Name}
		if inv.Base.Digest != "" {
			ref, err := ociPurl(inv.Base.Name, inv.Base.Digest, img.Arch)
			if err != nil {
				return nil, err
			}
			c.BOMRef, c.PackageURL = ref, ref
			c.Hashes = &[]cdx.Hash{sha256Hash(inv.Base.Digest)}
		} else {
			c.BOMRef = "base:" + inv.Base.Name
		}
		components = append(components, c)
	}
	if d := inv.Distro; d != nil {
		// The OS release as its own component: scanners (Grype, Trivy)
		// take the distro from the operating-system component to match
		// advisories. It has no Package URL: no purl type names a release.
		components = append(components, cdx.Component{Type: cdx.ComponentTypeOS, BOMRef: "os:" + d.ID + "-" + d.VersionID,
			Name: d.ID, Version: d.VersionID, Description: d.Codename})
	}
	slices.SortFunc(components, func(a, b cdx.Component) int { return strings.Compare(a.BOMRef, b.BOMRef) })
	refs := make([]string, len(components))
	for i, c := range components {
		refs[i] = c.BOMRef
	}

	props := []cdx.Property{
		{Name: PropertyArch, Value: img.Arch},
		{Name: PropertyBuildID, Value: b.BuildID},
		{Name: PropertyExecutionID, Value: b.ExecutionID},
		{Name: PropertyRecipe, Value: inv.Recipe},
		{Name: PropertyRuntime, Value: img.Runtime},
		{Name: PropertySourceRevision, Value: b.SourceRevision},
		{Name: PropertyVersion, Value: img.Version},
	}
	props = slices.DeleteFunc(props, func(p cdx.Property) bool { return p.Value == "" })

	bom := cdx.NewBOM()
	bom.SerialNumber = "urn:uuid:" + uuidV5(sbomNamespace, img.Digest).String()
	bom.Metadata = &cdx.Metadata{
		Lifecycles: &[]cdx.Lifecycle{{Phase: cdx.LifecyclePhasePostBuild}},
		Tools:      &cdx.ToolsChoice{Components: &[]cdx.Component{{Type: cdx.ComponentTypeApplication, Name: "evergreen"}}},
		Component: &cdx.Component{Type: cdx.ComponentTypeContainer, BOMRef: self, Name: img.Repository, Version: img.Version,
			PackageURL: self, Hashes: &[]cdx.Hash{sha256Hash(img.Digest)}},
		Properties: &props,
	}
	if !b.FinishedOn.IsZero() {
		bom.Metadata.Timestamp = records.Time(b.FinishedOn)
	}
	bom.Components = &components
	bom.Dependencies = &[]cdx.Dependency{{Ref: self, Dependencies: &refs}}

	var out bytes.Buffer
	// No HTML escaping: purls' "&" stay readable.
	enc := cdx.NewBOMEncoder(&out, cdx.BOMFileFormatJSON).SetPretty(true).SetEscapeHTML(false)
	if err := enc.EncodeVersion(bom, cdx.SpecVersion1_6); err != nil {
		return nil, fmt.Errorf("encoding the SBOM of %s@%s: %w", img.Repository, img.Digest, err)
	}
	return out.Bytes(), nil
}

func inventoryComponent(img Image, kind, name, version string) (cdx.Component, error) {
	var ref string
	var err error
	typ := cdx.ComponentTypeLibrary
	switch kind {
	case "os":
		ref, err = osPurl(img.Inventory, img.Arch, name, version)
	case "runtime":
		typ = cdx.ComponentTypeApplication
		ref, err = runtimePurl(name, version)
	case "npm":
		ref, err = npmPurl(name, version)
	case "pip":
		ref, err = purl("pypi", "", name, version, nil)
	default:
		err = fmt.Errorf("inventory kind %q is not one of %v", kind, records.Kinds)
	}
	if err != nil {
		return cdx.Component{}, err
	}
	// The inventory's kind needs no property of its own: the runtimes are
	// applications, and the purl type tells OS, npm and pip packages apart.
	return cdx.Component{Type: typ, BOMRef: ref, Name: name, Version: version, PackageURL: ref}, nil
}

func sha256Hash(digest string) cdx.Hash {
	return cdx.Hash{Algorithm: cdx.HashAlgoSHA256, Value: strings.TrimPrefix(digest, "sha256:")}
}

// readSBOM reads an SBOM back with CycloneDX's own decoder.
func readSBOM(doc []byte) (Summary, error) {
	var bom cdx.BOM
	if err := cdx.NewBOMDecoder(bytes.NewReader(doc), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
		return Summary{}, fmt.Errorf("the SBOM is not CycloneDX JSON: %w", err)
	}
	if bom.BOMFormat != cdx.BOMFormat || bom.SpecVersion != cdx.SpecVersion1_6 {
		return Summary{}, fmt.Errorf("the SBOM is %s %s, not CycloneDX 1.6", bom.BOMFormat, bom.SpecVersion)
	}
	if bom.Metadata == nil || bom.Metadata.Component == nil {
		return Summary{}, fmt.Errorf("the SBOM has no metadata.component: it names no image")
	}
	s := Summary{Kind: KindSBOM}
	var err error
	if s.Subject, err = componentDigest(*bom.Metadata.Component); err != nil {
		return Summary{}, fmt.Errorf("the SBOM's metadata.component %s: %w", bom.Metadata.Component.Name, err)
	}
	if bom.Metadata.Properties != nil {
		for _, p := range *bom.Metadata.Properties {
			if p.Name == PropertySourceRevision {
				s.SourceRevision = p.Value
			}
		}
	}
	if bom.Components != nil {
		s.Packages = len(*bom.Components)
		for _, c := range *bom.Components {
			if c.Type != cdx.ComponentTypeContainer {
				continue
			}
			if s.BaseName != "" {
				return Summary{}, fmt.Errorf("the SBOM lists two base images, %s and %s; an image has one", s.BaseName, c.Name)
			}
			s.BaseName = c.Name
			if c.Hashes != nil {
				if s.BaseDigest, err = componentDigest(c); err != nil {
					return Summary{}, fmt.Errorf("the SBOM's base image %s: %w", c.Name, err)
				}
			}
		}
	}
	return s, nil
}

// componentDigest is a component's SHA-256 hash as an OCI digest.
func componentDigest(c cdx.Component) (string, error) {
	if c.Hashes != nil {
		for _, h := range *c.Hashes {
			if h.Algorithm == cdx.HashAlgoSHA256 {
				d := "sha256:" + h.Value
				return d, checkDigest("its SHA-256 hash", d)
			}
		}
	}
	return "", fmt.Errorf("no SHA-256 hash: the digest is missing")
}
