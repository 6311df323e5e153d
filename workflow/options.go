package workflow

import "github.com/evergreen-images/evergreen/config"

// OptionsFrom takes the options from the app's configuration (package
// config, which reads cdk.json for the CDK app too): the schedule, the
// repository prefix and the
// default branch (evergreen:github's branch, or "main" when the key is
// absent). The generator and the drift test both call it, so a change to
// either value makes the committed workflow stale.
func OptionsFrom(c config.Config) Options {
	o := Options{Branch: "main", Schedule: c.Schedule, RepositoryPrefix: c.RepositoryPrefix, StackName: c.StackName, ParameterPrefix: c.ParameterPrefix(),
		VulnerabilityGate: c.VulnerabilityGate.Env(), ScanWaitSeconds: c.ScanWaitMinutes * 60, Signing: c.Signing, EnhancedScanning: c.EnhancedScanning}
	if c.GitHub != nil {
		o.Branch = c.GitHub.Branch
	}
	return o
}
