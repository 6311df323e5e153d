// Command benchsynth times `cdk synth` of the default app, of the app with a
// 60-version runtime list, and of a one-resource Go CDK app (the floor), in
// alternating rounds, and prints the medians and their ratios to the floor.
//
//	make bench            # or: go run ./cmd/benchsynth -rounds 5
//
// Run it from the repository root with the CDK CLI on PATH (make sets it).
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "benchsynth:", err)
		os.Exit(1)
	}
}

type variant struct {
	name string
	args []string
	runs []time.Duration
}

func run() error {
	rounds := flag.Int("rounds", 5, "alternating rounds; the median of each variant is reported")
	flag.Parse()

	tmp, err := os.MkdirTemp("", "benchsynth-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	// 60 runtime-versions on two architectures: 120 builds per stage.
	const sixty = "testdata/runtimes/sixty/runtimes.yaml"
	variants := []*variant{
		{name: "default list (7 versions)", args: nil},
		{name: "60 versions", args: []string{"-c", "evergreen:runtimeList=" + sixty}},
		{name: "floor (1-resource Go app)", args: []string{"--app", "go run ./cmd/benchsynth/floor"}},
	}
	// A warm-up round builds each binary once, so compile time is not measured.
	for round := -1; round < *rounds; round++ {
		for i := range variants {
			// Rotate the order each round so that no variant always runs
			// first (cold caches) or last.
			v := variants[(i+round+1)%len(variants)]
			out := filepath.Join(tmp, fmt.Sprintf("out-%d", i))
			args := append([]string{"synth", "--quiet", "-o", out}, v.args...)
			cmd := exec.Command("cdk", args...)
			cmd.Stderr = os.Stderr
			start := time.Now()
			if err := cmd.Run(); err != nil {
				return fmt.Errorf("cdk %s: %w", strings.Join(args, " "), err)
			}
			if round >= 0 {
				v.runs = append(v.runs, time.Since(start))
			}
		}
	}
	floor := median(variants[2].runs)
	fmt.Printf("%-28s %10s %10s %10s %8s\n", "cdk synth of", "median", "min", "max", "x floor")
	for _, v := range variants {
		m := median(v.runs)
		fmt.Printf("%-28s %9.2fs %9.2fs %9.2fs %7.2fx\n", v.name, m.Seconds(), slices.Min(v.runs).Seconds(), slices.Max(v.runs).Seconds(), m.Seconds()/floor.Seconds())
	}
	fmt.Printf("%d rounds, node %s, goals: default <= 1.25x, 60 versions <= 2x\n", *rounds, nodeVersion())
	return nil
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func nodeVersion() string {
	out, err := exec.Command("node", "--version").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}
