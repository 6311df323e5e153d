package stage

import "testing"

// SLSA's builder is who builds (the CodeBuild project, the workflow), the
// build one of its runs: the Build record keeps both apart.
func TestTheBuilderIsTheProjectOrWorkflowAndTheBuildItsRun(t *testing.T) {
	for _, c := range []struct {
		name                         string
		env                          map[string]string
		builder, buildID, sourceRepo string
	}{
		{"codebuild", map[string]string{
			"CODEBUILD_BUILD_ARN": "arn:aws-cn:codebuild:cn-north-1:123456789012:build/evergreen-build:0b1c", "CODEBUILD_BUILD_ID": "evergreen-build:0b1c",
			"CODEBUILD_SOURCE_REPO_URL": "arn:aws-cn:s3:::source-bucket/source.zip",
		}, "arn:aws-cn:codebuild:cn-north-1:123456789012:project/evergreen-build", "evergreen-build:0b1c", "arn:aws-cn:s3:::source-bucket/source.zip"},
		{"github", map[string]string{
			"GITHUB_WORKFLOW_REF": "acme/images/.github/workflows/images.yml@refs/heads/main", "GITHUB_SERVER_URL": "https://github.com",
			"GITHUB_REPOSITORY": "acme/images", "GITHUB_RUN_ID": "42", "GITHUB_RUN_ATTEMPT": "2",
		}, "https://github.com/acme/images/.github/workflows/images.yml@refs/heads/main", "https://github.com/acme/images/actions/runs/42/attempts/2", "git+https://github.com/acme/images"},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, k := range []string{"CODEBUILD_BUILD_ARN", "CODEBUILD_BUILD_ID", "CODEBUILD_SOURCE_REPO_URL", "GITHUB_WORKFLOW_REF"} {
				t.Setenv(k, "")
			}
			t.Setenv("PIPELINE_EXECUTION_ID", "11111111-2222-3333-4444-555555555555")
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			e, err := EnvFromOS()
			if err != nil {
				t.Fatal(err)
			}
			if e.Builder != c.builder || e.BuildID != c.buildID || e.SourceRepository != c.sourceRepo {
				t.Errorf("builder %q build %q source %q; want %q %q %q", e.Builder, e.BuildID, e.SourceRepository, c.builder, c.buildID, c.sourceRepo)
			}
		})
	}
}
