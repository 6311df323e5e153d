package stacks

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// CloudFormation limits a synthesized template must stay within. The CDK CLI
// uploads templates over 51,200 bytes to the bootstrap bucket, where the
// limit is 1 MB.
const (
	MaxTemplateBytes = 1_000_000
	MaxResources     = 500
)

// CheckLimits fails when the synthesized template would be refused by
// CloudFormation, naming the limit, so the failure happens at synth and not
// half way through a deploy.
func CheckLimits(assemblyDir, stackName string) error {
	path := filepath.Join(assemblyDir, stackName+".template.json")
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading the synthesized template: %w", err)
	}
	if len(data) > MaxTemplateBytes {
		return fmt.Errorf("%s is %d bytes, over CloudFormation's %d-byte template limit; list fewer runtime versions, or split the list across two apps", path, len(data), MaxTemplateBytes)
	}
	var t struct {
		Resources map[string]json.RawMessage
	}
	if err := json.Unmarshal(data, &t); err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	if len(t.Resources) > MaxResources {
		return fmt.Errorf("%s has %d resources, over CloudFormation's limit of %d per stack; list fewer runtime versions", path, len(t.Resources), MaxResources)
	}
	return nil
}
