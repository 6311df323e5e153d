package stage

import (
	"maps"
	"reflect"
	"slices"
	"sort"

	"github.com/evergreen-images/evergreen/internal/records"
)

// inventoryDelta is what changed in one architecture's image, from the
// inventory of the image replaced (old; nil when unknown: a first publish,
// or an image published before inventories were kept) to the new one's.
// "Upgraded" is any change of version: Debian version order is dpkg's to
// judge, not this code's.
func inventoryDelta(old, new *records.Inventory) *records.Changes {
	if old == nil {
		return &records.Changes{PreviousKnown: false, Added: []records.Item{}, Removed: []records.Item{}, Upgraded: []records.Upgrade{}, Packages: new.Count()}
	}
	c := &records.Changes{PreviousKnown: true, RecipeChanged: old.Recipe != new.Recipe,
		Added: []records.Item{}, Removed: []records.Item{}, Upgraded: []records.Upgrade{}}
	if old.Base.Digest != new.Base.Digest {
		c.Base = &records.Move{From: old.Base.Digest, To: new.Base.Digest}
	}
	// A release is compared only when both inventories name one: those
	// recorded before the distribution was kept name none.
	if old.Distro != nil && new.Distro != nil && (old.Distro.ID != new.Distro.ID || old.Distro.VersionID != new.Distro.VersionID) {
		c.Distro = &records.Move{From: old.Distro.String(), To: new.Distro.String()}
	}
	for _, k := range records.Kinds {
		o, n := old.Items(k), new.Items(k)
		for _, name := range slices.Sorted(maps.Keys(n)) {
			if was, ok := o[name]; !ok {
				c.Added = append(c.Added, records.Item{Kind: k, Name: name, Version: n[name]})
			} else if was != n[name] {
				c.Upgraded = append(c.Upgraded, records.Upgrade{Kind: k, Name: name, From: was, To: n[name]})
			}
		}
		for _, name := range slices.Sorted(maps.Keys(o)) {
			if _, ok := n[name]; !ok {
				c.Removed = append(c.Removed, records.Item{Kind: k, Name: name, Version: o[name]})
			}
		}
	}
	return c
}

// sameContent tells whether two images hold the same thing: base digest,
// recipe and every package at the same version. How long the inventory
// took (Seconds) and the base image's name are not content, nor are the
// distribution, the architectures and the package manager: inventories
// recorded before they were kept compare equal, and a new release shows in
// the OS packages' versions anyway.
func sameContent(a, b *records.Inventory) bool {
	if a == nil || b == nil {
		return false
	}
	if a.Base.Digest != b.Base.Digest || a.Recipe != b.Recipe {
		return false
	}
	for _, k := range records.Kinds {
		x, y := a.Items(k), b.Items(k)
		if len(x) == 0 && len(y) == 0 {
			continue
		}
		if !reflect.DeepEqual(x, y) {
			return false
		}
	}
	return true
}

// vulnerabilityDelta is the CVEs fixed and introduced in one architecture,
// from the scans Verify read, when the published image is the one this
// execution verified (nil otherwise, or without a scan): a CVE is keyed by
// its id and package. Without a scan of the image replaced, nothing counts
// as introduced.
func vulnerabilityDelta(v records.Verify, published string) *records.Vulnerabilities {
	if v.Digest != published || v.Scan == nil {
		return nil
	}
	d := &records.Vulnerabilities{Counts: v.Scan.Counts, Fixed: []records.CVE{}, Introduced: []records.CVE{}}
	if d.Counts == nil {
		d.Counts = map[string]int{}
	}
	var old []records.Finding
	if v.PublishedScan != nil {
		d.PreviousCounts = v.PublishedScan.Counts
		if d.PreviousCounts == nil {
			d.PreviousCounts = map[string]int{}
		}
		old = v.PublishedScan.Findings
	}
	keys := func(fs []records.Finding) map[string]bool {
		m := map[string]bool{}
		for _, f := range fs {
			m[f.Key()] = true
		}
		return m
	}
	nk, ok := keys(v.Scan.Findings), keys(old)
	for _, f := range old {
		if !nk[f.Key()] {
			d.Fixed = append(d.Fixed, records.CVE{ID: f.ID, Severity: f.Severity, Package: f.Package})
		}
	}
	if v.PublishedScan != nil {
		for _, f := range v.Scan.Findings {
			if !ok[f.Key()] {
				d.Introduced = append(d.Introduced, records.CVE{ID: f.ID, Severity: f.Severity, Package: f.Package})
			}
		}
	}
	sortCVEs(d.Fixed)
	sortCVEs(d.Introduced)
	return d
}

func sortCVEs(c []records.CVE) {
	sort.SliceStable(c, func(i, j int) bool {
		if c[i].ID != c[j].ID {
			return c[i].ID < c[j].ID
		}
		return c[i].Package < c[j].Package
	})
}
