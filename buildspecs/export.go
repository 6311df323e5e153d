package buildspecs

import (
	"fmt"
	"strings"
)

// The stage commands in the forms other runners need. Everything here is
// derived from Commands at the time it is called, so a generator that calls
// it (make generate) follows every fix made to the commands, and its drift
// test fails until the generated file is rewritten.

// Script is a stage's pre_build and build commands as one sh script, in
// order. CodeBuild (buildspec version 0.2) runs a build's commands in one
// shell session, so one script run by `sh -e` behaves the same: a variable
// set by one command is seen by the next, and a failing command fails the
// stage.
func Script(st Stage) string {
	pre, build := Commands(st)
	return strings.Join(append(append([]string{}, pre...), build...), "\n") + "\n"
}

// LocalScripts are the Build and Verify commands for a runner that may not
// touch the registry (a pull request): the same Dockerfile, build arguments,
// platform, draft tag, architecture check and self-test, with the image
// loaded into the local Docker engine instead of pushed, and without the
// commands that call AWS (login, the records, the pushed manifest's type,
// the pull).
//
// It fails, rather than guess, when the commands no longer have the shape it
// expects: one command holding `docker buildx build ... --push ...` in Build.
func LocalScripts() (build, verify string, err error) {
	pre, cmds := Commands(Build)
	var b []string
	found := false
	for _, c := range append(append([]string{}, pre...), cmds...) {
		if strings.Contains(c, "docker buildx build ") {
			if found {
				return "", "", fmt.Errorf("buildspecs: the build commands hold two docker buildx build commands; LocalScripts expects one")
			}
			if n := strings.Count(c, " --push"); n != 1 {
				return "", "", fmt.Errorf("buildspecs: the docker buildx build command has %d --push flags; LocalScripts expects one", n)
			}
			b = append(b, strings.Replace(c, " --push", " --load", 1))
			found = true
			// What follows inspects the pushed image in ECR.
			break
		}
		if !callsAWS(c) {
			b = append(b, c)
		}
	}
	if !found {
		return "", "", fmt.Errorf("buildspecs: no docker buildx build command among the build commands")
	}

	pre, cmds = Commands(Verify)
	var v []string
	for _, c := range append(append([]string{}, pre...), cmds...) {
		switch {
		case callsAWS(c):
		case strings.Contains(c, "docker pull "):
			// the image is already in the local engine
		default:
			v = append(v, c)
		}
	}
	if !strings.Contains(strings.Join(v, "\n"), "self-test") {
		return "", "", fmt.Errorf("buildspecs: the verify commands no longer run self-test")
	}
	return strings.Join(b, "\n") + "\n", strings.Join(v, "\n") + "\n", nil
}

// callsAWS: the command talks to AWS (the CLI, or docker login to ECR), or
// works with what it read from there (the records and the digest Build
// recorded, which a runner without AWS access does not have).
func callsAWS(c string) bool {
	for _, s := range []string{"aws ", "docker login", "RECORD", "$BUILT"} {
		if strings.Contains(c, s) {
			return true
		}
	}
	return false
}
