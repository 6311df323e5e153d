package buildspecs

import "fmt"

// What each stage's build runs. The stages' logic is Go (internal/stage),
// in one binary, cmd/evergreen; a buildspec only starts it, so what a
// build does is tested by go test and the same in CodeBuild, the GitHub
// workflow and the rehearsal.
//
// How the binary reaches a build: the pipeline's Tool stage (ToolSpec,
// buildspecs/tool.yml) compiles it from the source artifact, the deployed
// commit, for both architectures, into its output artifact ToolArtifact.
// Every later stage's action takes that artifact as a second input, and
// CodeBuild puts a secondary input at $CODEBUILD_SRC_DIR_<artifact name>.
// `uname -m` names the build host's architecture as the artifact's folders
// do (x86_64 on LINUX_CONTAINER, aarch64 on ARM_CONTAINER), so one command
// serves both kinds of entry. The stage then reads its entry from the
// environment (stage.EnvFromOS) and the source from $CODEBUILD_SRC_DIR.

// MetricNamespace holds the freshness metric Publish puts (metric Fresh,
// dimensions Stack, Runtime, Version); the stack's alarms watch it and its
// PutMetricData grant is held to it. The stack sets METRIC_NAMESPACE from
// it on the Publish project.
const MetricNamespace = "EvergreenImages"

// ToolArtifact is the Tool stage's output artifact: the pipeline must name
// it exactly so, since the stages find it at $CODEBUILD_SRC_DIR_Tool.
const ToolArtifact = "Tool"

// ToolFiles are the binaries the Tool stage builds, by the `uname -m` of the
// host that runs them; the Tool buildspec's artifacts lists them.
var ToolFiles = []string{"bin/x86_64/evergreen", "bin/aarch64/evergreen"}

// ToolGo is the Go release line the Tool build asks CodeBuild for
// (runtime-versions golang), the major.minor of go.mod's go line. Its
// patch release comes from go.mod (toolBuild).
const ToolGo = "1.26"

// toolBinary is the binary for the build host, from the Tool artifact.
const toolBinary = `"$CODEBUILD_SRC_DIR_` + ToolArtifact + `/bin/$(uname -m)/evergreen"`

// toolExecutable sets the binary's executable bit again: artifacts travel
// between CodePipeline actions as zip files, and whether a zip keeps Unix
// modes depends on the tool that made and unpacked it (reports of lost
// executable bits: awslabs/aws-codebuild-jenkins-plugin#46, and CodeBuild's
// own advice there to chmod after unzipping). Without it, every stage would
// fail at its one command with "permission denied".
const toolExecutable = "chmod +x " + toolBinary

// toolBuild compiles cmd/evergreen reproducibly: the same commit and
// toolchain give the same bytes (-trimpath drops the build machine's paths,
// -buildvcs=false the VCS stamp, -ldflags=-buildid= the build id; no cgo, so
// no C toolchain is involved and the arm64 binary cross-compiles on the
// amd64 host).
//
// The toolchain is exactly go.mod's go line. CodeBuild's golang 1.26 is
// some 1.26.x (1.26.0 in amazonlinux-x86_64-standard:6.0's Dockerfile,
// GOLANG_26_VERSION); GOTOOLCHAIN=go<go.mod's version> makes that go run
// the named release instead, which the go command downloads from the
// module proxy and checks against the checksum database (go.dev/doc/
// toolchain), whether the image's is older or newer. The version is read
// from go.mod at build time, so raising go.mod's go line is the one change
// that moves the pipeline's toolchain.
var toolBuild = []string{
	`GOTOOLCHAIN="go$(go list -m -f '{{.GoVersion}}')"`,
	`export GOTOOLCHAIN`,
	`go version`,
	goBuild("amd64", ToolFiles[0]),
	goBuild("arm64", ToolFiles[1]),
}

func goBuild(goarch, out string) string {
	return fmt.Sprintf("CGO_ENABLED=0 GOOS=linux GOARCH=%s go build -trimpath -buildvcs=false -ldflags=-buildid= -o %s ./cmd/evergreen", goarch, out)
}

// StageCommand is what a stage's buildspec runs: the binary's `stage`
// subcommand of the same name. False for the Tool stage, which builds the
// binary.
func StageCommand(st Stage) (string, bool) {
	switch st {
	case Build, Verify, Publish, Report:
		return toolBinary + " stage " + string(st), true
	}
	return "", false
}

// Commands returns the pre_build and build commands of a stage's
// buildspec: the executable bit, then the stage. No stage has pre_build
// commands any more; the result keeps both for the callers that compare
// phases.
func Commands(st Stage) (preBuild, build []string) {
	if st == Tool {
		return nil, toolBuild
	}
	if c, ok := StageCommand(st); ok {
		return nil, []string{toolExecutable, c}
	}
	return nil, nil
}

// InlineCommands are Commands: the buildspecs inline them as they are.
//
// Deprecated: use Commands. Kept while internal/rehearsal still calls it.
func InlineCommands(st Stage) (pre, build []string) { return Commands(st) }
