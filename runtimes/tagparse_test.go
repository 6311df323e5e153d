package runtimes

import "testing"

func TestIsDatedTagOf(t *testing.T) {
	const exec = "6f1c2a9e-4b7d-4e21-9a3f-0c5d8e7b1a24"
	for tag, want := range map[string]bool{
		"22-r20261120-0a1b2c3d":                            true, // the 8-hex form of tags published before
		DatedTag("22", "20261120", "0a1b2c3d"):             true,
		DatedTag("22", "20261120", exec):                   true,
		"22-r20261120-" + exec:                             true,
		"22":                                               false,
		"22-arm64":                                         false,
		"24-r20261120-0a1b2c3d":                            false, // another version
		"22-r20261320-0a1b2c3d":                            false, // month 13
		"22-r20261120-0A1B2C3D":                            false, // execution ids are lowercase
		"22-r20261120-0a1b2c3":                             false,
		"22-r20261120-0a1b2c3d0":                           false,
		"22-r20261120-" + exec[:35]:                        false,
		"22-r20261120-" + exec + "0":                       false,
		"22-r20261120-6f1c2a9e-4b7d-4e21-9a3f0c5d8e7b1a24": false,
		"22-r20261120-":                                    false,
		"22-r2026112":                                      false,
		"draft-22-arm64-0a1b2c3d":                          false,
	} {
		if got := IsDatedTagOf("22", tag); got != want {
			t.Errorf("IsDatedTagOf(22, %q) = %v", tag, got)
		}
	}
}

// The dated tag names the whole execution id, so two executions whose ids
// share the first 8 characters write (and find) different commit points.
func TestDatedTagNamesTheWholeExecution(t *testing.T) {
	a, b := "0a1b2c3d-1111-4111-8111-111111111111", "0a1b2c3d-2222-4222-8222-222222222222"
	ta, tb := DatedTag("22", "20261120", a), DatedTag("22", "20261120", b)
	if ta == tb {
		t.Fatalf("executions %s and %s share the dated tag %s", a, b, ta)
	}
	for tag, want := range map[string]string{ta: a, tb: b, "22-r20261120-0a1b2c3d": "0a1b2c3d"} {
		day, id, ok := ParseDatedTag("22", tag)
		if !ok || day != "20261120" || id != want {
			t.Errorf("ParseDatedTag(22, %q) = %q, %q, %v; want 20261120, %q", tag, day, id, ok, want)
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
