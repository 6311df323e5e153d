package validate

import (
	"testing"
	"time"
)

// TestGoModIsTidy: go.mod and go.sum say exactly what the code imports. An
// untidy go.mod hides a dependency marked indirect that the code uses, or
// keeps one nothing uses (both happened: the stages' move to Go dropped the
// AWS CLI imitation's jmespath).
func TestGoModIsTidy(t *testing.T) {
	start := time.Now()
	code, stdout, stderr := run(t, 5*time.Minute, repoRoot, nil, "go", "mod", "tidy", "-diff")
	report("go mod tidy -diff: go.mod and go.sum in %s", since(start))
	if code != 0 {
		t.Errorf("go mod tidy would change go.mod or go.sum (run: go mod tidy):\n%s%s", stdout, stderr)
	}
}
