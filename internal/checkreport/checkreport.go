// Package checkreport prints the one line each external check (cfn-lint,
// shellcheck, hadolint, the schema, actionlint, zizmor, the bad-input corpus)
// prints, pass or fail: what it checked and how long it took.
//
// `go test ./...` shows a test's output only when its package fails, so
// `make test` sets CHECK_REPORT to a file, appends the lines there, and prints
// the file after the run. Without CHECK_REPORT the line goes to stdout
// (visible with go test -v).
package checkreport

import (
	"fmt"
	"os"
	"sync"
)

var mu sync.Mutex

// Printf writes one line.
func Printf(format string, args ...any) {
	line := fmt.Sprintf(format, args...) + "\n"
	path := os.Getenv("CHECK_REPORT")
	if path == "" {
		fmt.Print(line)
		return
	}
	mu.Lock()
	defer mu.Unlock()
	// O_APPEND: test binaries of several packages write to the same file.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		fmt.Print(line)
		return
	}
	defer f.Close()
	f.WriteString(line)
}
