package rehearsal

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The Parameter Store stand-in: `aws ssm get-parameter` and `aws ssm
// put-parameter` for String parameters, kept in StateDir/ssm.json, every
// write logged in StateDir/ssm-writes.jsonl (the scenarios read both back).
//
// What it keeps of Parameter Store: the name rules (a name with a '/' must
// be fully qualified, that is start with '/'; letters, digits and _.-/
// only; no name beginning with aws or ssm in any case; at most 15 levels;
// at most 1011 characters), the standard tier's 4096-character value limit,
// ParameterAlreadyExists without --overwrite, ParameterNotFound, and a
// Version that grows by one on every put, even one of the same value (as
// Parameter Store does: that is why the commands write only when the value
// differs). What it does not keep: StringList and SecureString, the
// advanced tier, labels and name:version selectors, history, tags,
// policies, IAM.

var (
	getParameterOptions = []string{"name", "with-decryption", "no-with-decryption"}
	putParameterOptions = []string{"name", "value", "type", "overwrite", "no-overwrite",
		// Real options the stand-in does not emulate: refused loudly below.
		"description", "tier", "data-type", "key-id", "allowed-pattern", "tags", "policies"}
)

// Parameter is one parameter of the stand-in, as GetParameter describes it.
type Parameter struct {
	Name             string    `json:"name"`
	Type             string    `json:"type"`
	Value            string    `json:"value"`
	Version          int       `json:"version"`
	LastModifiedDate time.Time `json:"lastModifiedDate"`
}

// ParameterWrite is one put-parameter the stand-in accepted.
type ParameterWrite struct {
	Time    time.Time `json:"time"`
	Name    string    `json:"name"`
	Value   string    `json:"value"`
	Version int       `json:"version"`
}

const (
	ssmStateFile  = "ssm.json"
	ssmWritesFile = "ssm-writes.jsonl"
)

// Parameters reads the stand-in's parameters, by name.
func (c *StandInConfig) Parameters() (map[string]Parameter, error) {
	ps := map[string]Parameter{}
	data, err := os.ReadFile(filepath.Join(c.StateDir, ssmStateFile))
	if os.IsNotExist(err) {
		return ps, nil
	}
	if err != nil {
		return nil, err
	}
	return ps, json.Unmarshal(data, &ps)
}

// ParameterWrites lists every put-parameter so far, in order.
func (c *StandInConfig) ParameterWrites() ([]ParameterWrite, error) {
	return readJSONLines[ParameterWrite](c, ssmWritesFile)
}

func (c *StandInConfig) writeParameters(ps map[string]Parameter) error {
	b, err := json.MarshalIndent(ps, "", "  ")
	if err != nil {
		return err
	}
	p := filepath.Join(c.StateDir, ssmStateFile)
	// Whole or not at all: a concurrent reader sees the old or the new file.
	if err := os.WriteFile(p+".new", b, 0o644); err != nil {
		return err
	}
	return os.Rename(p+".new", p)
}

// validParameterName applies Parameter Store's name rules; the message is
// the service's ValidationException text.
func validParameterName(op, n string) error {
	const charsMsg = `Parameter name: can't be prefixed with "aws" or "ssm" (case-insensitive). If formed as a path, it can consist of sub-paths divided by slash symbol; each sub-path can be formed as a mix of letters, numbers and the following 3 symbols .-_`
	if n == "" {
		return usageError("\naws: error: argument --name: expected one argument")
	}
	if strings.Contains(n, ":") {
		// name:version, name:label and ARNs select a parameter: not emulated.
		return &CLIError{255, fmt.Sprintf("rehearsal stand-in: parameter selectors and ARNs (%q) are not emulated: name the parameter", n)}
	}
	if len(n) > 1011 {
		return serviceError(op, "ValidationException", "Parameter name is too long: at most 1011 characters.")
	}
	if strings.Contains(n, "/") && !strings.HasPrefix(n, "/") {
		return serviceError(op, "ValidationException", "Parameter name must be a fully qualified name.")
	}
	for _, ch := range n {
		ok := ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || strings.ContainsRune("_.-/", ch)
		if !ok {
			return serviceError(op, "ValidationException", "%s", charsMsg)
		}
	}
	first := strings.ToLower(strings.TrimPrefix(n, "/"))
	if strings.HasPrefix(first, "aws") || strings.HasPrefix(first, "ssm") {
		return serviceError(op, "ValidationException", "%s", charsMsg)
	}
	if strings.Contains(strings.TrimPrefix(n, "/"), "//") || strings.HasSuffix(n, "/") {
		return serviceError(op, "ValidationException", "%s", charsMsg)
	}
	if levels := len(strings.Split(strings.TrimPrefix(n, "/"), "/")); levels > 15 {
		return serviceError(op, "HierarchyLevelLimitExceededException", "Parameter path: hierarchy level limit exceeded (%d levels; the maximum is 15).", levels)
	}
	return nil
}

func (e *ECR) parameterARN(n string) string {
	if !strings.HasPrefix(n, "/") {
		n = "/" + n
	}
	return "arn:aws:ssm:" + e.Cfg.Region + ":" + e.Cfg.Account + ":parameter" + n
}

func (e *ECR) getParameter(ca cliArgs) (any, error) {
	const op = "GetParameter"
	n, err := ca.one("name", true)
	if err != nil {
		return nil, err
	}
	if err := validParameterName(op, n); err != nil {
		return nil, err
	}
	unlock, err := e.Cfg.lockFile("ssm.lock")
	if err != nil {
		return nil, err
	}
	defer unlock()
	ps, err := e.Cfg.Parameters()
	if err != nil {
		return nil, err
	}
	p, ok := ps[n]
	if !ok {
		// Parameter Store answers GetParameter of a missing name with an
		// empty message.
		return nil, serviceError(op, "ParameterNotFound", "")
	}
	return map[string]any{"Parameter": map[string]any{
		"Name": p.Name, "Type": p.Type, "Value": p.Value, "Version": p.Version,
		// The CLI v2 prints timestamps in ISO 8601 with the local offset.
		"LastModifiedDate": p.LastModifiedDate.Local().Format("2006-01-02T15:04:05.000000-07:00"),
		"ARN":              e.parameterARN(p.Name),
		"DataType":         "text",
	}}, nil
}

func (e *ECR) putParameter(ca cliArgs, args []string) (any, error) {
	const op = "PutParameter"
	for _, k := range []string{"description", "tier", "data-type", "key-id", "allowed-pattern", "tags", "policies"} {
		if _, ok := ca.opts[k]; ok {
			return nil, &CLIError{255, fmt.Sprintf("rehearsal stand-in: aws ssm put-parameter --%s is not emulated", k)}
		}
	}
	n, err := ca.one("name", true)
	if err != nil {
		return nil, err
	}
	v, err := ca.one("value", true)
	if err != nil {
		return nil, err
	}
	typ, err := ca.one("type", false)
	if err != nil {
		return nil, err
	}
	switch typ {
	case "", "String":
	case "StringList", "SecureString":
		return nil, &CLIError{255, fmt.Sprintf("rehearsal stand-in: parameters of type %s are not emulated", typ)}
	default:
		return nil, usageError("\naws: error: argument --type: Invalid choice, valid choices are:\n\nString                                   | StringList\nSecureString")
	}
	overwrite := len(ca.opts["overwrite"]) > 0 && len(ca.opts["no-overwrite"]) == 0
	if err := validParameterName(op, n); err != nil {
		return nil, err
	}
	if v == "" {
		return nil, serviceError(op, "ValidationException", "1 validation error detected: Value '' at 'value' failed to satisfy constraint: Member must have length greater than or equal to 1")
	}
	if len(v) > 4096 {
		return nil, serviceError(op, "ValidationException", "Standard tier parameters support a maximum parameter value of 4096 characters. To create a larger parameter value, upgrade the parameter to use the advanced-parameter tier. For more information, see https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-advanced-parameters.html")
	}
	if e.Cfg.countCall("put-parameter", args) {
		return nil, serviceError(op, "ThrottlingException", "Rate exceeded (injected by the rehearsal)")
	}
	unlock, err := e.Cfg.lockFile("ssm.lock")
	if err != nil {
		return nil, err
	}
	defer unlock()
	ps, err := e.Cfg.Parameters()
	if err != nil {
		return nil, err
	}
	p, exists := ps[n]
	switch {
	case exists && !overwrite:
		return nil, serviceError(op, "ParameterAlreadyExists", "The parameter already exists. To overwrite this value, set the overwrite option in the request to true.")
	case !exists && typ == "":
		return nil, serviceError(op, "ValidationException", "A parameter type is required when you create a parameter.")
	case !exists:
		p = Parameter{Name: n, Type: typ}
	case typ != "" && typ != p.Type:
		return nil, serviceError(op, "ValidationException", "You can not change the parameter type of %s from %s to %s.", n, p.Type, typ)
	}
	// Every put is a new version, even of the same value.
	p.Value, p.Version, p.LastModifiedDate = v, p.Version+1, e.Now().UTC()
	ps[n] = p
	if err := e.Cfg.writeParameters(ps); err != nil {
		return nil, err
	}
	if err := e.Cfg.appendJSONLine(ssmWritesFile, ParameterWrite{p.LastModifiedDate, n, v, p.Version}); err != nil {
		return nil, err
	}
	return map[string]any{"Version": p.Version, "Tier": "Standard"}, nil
}
