package evidence

import (
	"fmt"
	"strings"

	"github.com/package-url/packageurl-go"

	"github.com/evergreen-images/evergreen/internal/records"
)

// purl builds a Package URL with packageurl-go, which percent-encodes each
// part (a Debian epoch's ":", an npm scope's "@") and applies the type's
// rules (pypi names lowercased, "_" as "-").
func purl(typ, namespace, name, version string, qualifiers map[string]string) (string, error) {
	for k, v := range qualifiers {
		if v == "" {
			delete(qualifiers, k)
		}
	}
	p := packageurl.NewPackageURL(typ, namespace, name, version, packageurl.QualifiersFromMap(qualifiers), "")
	if err := p.Normalize(); err != nil {
		return "", fmt.Errorf("package URL of %s %s %s: %w", typ, name, version, err)
	}
	return p.ToString(), nil
}

// osPurl is the Package URL of one of the inventory's OS packages: type
// apk when apk's database listed it (or the distro is Alpine), else deb;
// the vendor and the distro from the OS release; the package's own
// architecture as its package manager names it (Debian's "all", Alpine's
// "noarch"), or, in an inventory recorded before architectures were kept,
// the image's (in apk's names on Alpine).
//
// Without the distro (nil) nothing is assumed: the namespace (the vendor:
// debian, ubuntu) and the distro qualifier are left out rather than
// guessed, and a consumer's scanner matches on name and version alone.
func osPurl(inv *records.Inventory, arch, name, version string) (string, error) {
	d, pkgArch := inv.Distro, inv.OSArch[name]
	vendor, distro := "", ""
	if d != nil {
		vendor, distro = d.ID, d.ID+"-"+d.VersionID
	}
	if inv.PackageManager == "apk" || d != nil && d.ID == "alpine" {
		if pkgArch == "" {
			pkgArch = apkArch(arch)
		}
		return purl(packageurl.TypeApk, vendor, name, version, map[string]string{"arch": pkgArch, "distro": distro})
	}
	if pkgArch == "" {
		pkgArch = arch
	}
	return purl(packageurl.TypeDebian, vendor, name, version, map[string]string{"arch": pkgArch, "distro": distro})
}

// apkArch is apk's name of an OCI architecture.
func apkArch(arch string) string {
	switch arch {
	case "amd64":
		return "x86_64"
	case "arm64":
		return "aarch64"
	}
	return arch
}

// npmPurl splits a scoped package (@scope/name): the scope is the purl's
// namespace.
func npmPurl(name, version string) (string, error) {
	ns, n := "", name
	if strings.HasPrefix(name, "@") {
		if s, rest, ok := strings.Cut(name, "/"); ok {
			ns, n = s, rest
		}
	}
	return purl(packageurl.TypeNPM, ns, n, version, nil)
}

// runtimePurl is the Package URL of a runtime as the inventory names it:
// npm and pip are packages of their own ecosystems; node and python have
// no purl type, so they are generic.
func runtimePurl(name, version string) (string, error) {
	switch name {
	case "npm":
		return npmPurl(name, version)
	case "pip":
		return purl(packageurl.TypePyPi, "", name, version, nil)
	}
	return purl(packageurl.TypeGeneric, "", name, version, nil)
}

// ociRef is an image reference split as the oci purl type wants it.
type ociRef struct {
	repositoryURL string // registry host and repository, no tag
	name          string // the repository's last segment, lowercased
	tag           string
}

// parseRef splits host/path/name[:tag][@digest]. A digest in the reference
// is dropped: the purl's version is the digest given separately.
func parseRef(ref string) ociRef {
	ref, _, _ = strings.Cut(ref, "@")
	r := ociRef{repositoryURL: ref}
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		r.repositoryURL, r.tag = ref[:i], ref[i+1:]
	}
	r.name = strings.ToLower(r.repositoryURL[strings.LastIndex(r.repositoryURL, "/")+1:])
	return r
}

// ociPurl is pkg:oci/<name>@<digest>?arch=..&repository_url=..&tag=..,
// the oci type's form for an image by digest.
func ociPurl(ref, digest, arch string) (string, error) {
	r := parseRef(ref)
	return purl(packageurl.TypeOCI, "", r.name, digest, map[string]string{"arch": arch, "repository_url": r.repositoryURL, "tag": r.tag})
}
