package runtimes

import "testing"

func TestIsDatedTagOf(t *testing.T) {
	for tag, want := range map[string]bool{
		"22-r20261120-0a1b2c3d":                true,
		DatedTag("22", "20261120", "0a1b2c3d"): true,
		"22":                                   false,
		"22-arm64":                             false,
		"24-r20261120-0a1b2c3d":                false, // another version
		"22-r20261320-0a1b2c3d":                false, // month 13
		"22-r20261120-0A1B2C3D":                false, // execution ids are lowercase
		"22-r20261120-0a1b2c3":                 false,
		"22-r20261120-0a1b2c3d0":               false,
		"draft-22-arm64-0a1b2c3d":              false,
	} {
		if got := IsDatedTagOf("22", tag); got != want {
			t.Errorf("IsDatedTagOf(22, %q) = %v", tag, got)
		}
	}
}

func TestParseDraftTag(t *testing.T) {
	archs := []Arch{ARM64, AMD64}
	a, id, ok := ParseDraftTag(DraftTag("22", AMD64, "6f1c2a9e-4b7d"), "22", archs)
	if !ok || a != AMD64 || id != "6f1c2a9e-4b7d" {
		t.Errorf("ParseDraftTag: %v %q %v", a, id, ok)
	}
	for _, tag := range []string{
		DraftTag("22-slim", ARM64, "x"), // another version that starts with 22
		DraftTag("22", "s390x", "x"),    // an architecture the runtime does not list
		"draft-22-arm64-",               // no execution id
		"22-arm64",
	} {
		if _, _, ok := ParseDraftTag(tag, "22", archs); ok {
			t.Errorf("ParseDraftTag(%q) accepted it", tag)
		}
	}
}
