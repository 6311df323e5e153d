package buildspecs

import (
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/awscodebuild"
)

// DefaultImages spells out aws-cdk-go's constants; an upgrade of aws-cdk-go
// that changes them must change DefaultImages too.
func TestDefaultImagesAreTheCDKConstants(t *testing.T) {
	want := Images{
		ARM64: *awscodebuild.LinuxArmBuildImage_AMAZON_LINUX_2023_STANDARD_4_0().ImageId(),
		AMD64: *awscodebuild.LinuxBuildImage_AMAZON_LINUX_2023_6().ImageId(),
	}
	if got := DefaultImages(); got != want {
		t.Errorf("DefaultImages() = %+v, aws-cdk-go says %+v", got, want)
	}
}
