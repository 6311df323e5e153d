package stacks_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"

	"github.com/evergreen-images/evergreen/config"
	"github.com/evergreen-images/evergreen/stacks"
)

// statement is an IAM policy statement as CloudFormation writes it.
type statement struct {
	Effect    string
	Action    any
	Resource  any
	Principal any
	Condition any
}

func (s statement) actions() []string   { return strs(s.Action) }
func (s statement) resources() []string { return strsJSON(s.Resource) }

func strs(v any) []string {
	switch t := v.(type) {
	case string:
		return []string{t}
	case []any:
		var out []string
		for _, x := range t {
			out = append(out, x.(string))
		}
		return out
	}
	return nil
}

// strsJSON renders each resource (a string or an intrinsic) as JSON text.
func strsJSON(v any) []string {
	var items []any
	switch t := v.(type) {
	case []any:
		items = t
	case nil:
	default:
		items = []any{t}
	}
	var out []string
	for _, x := range items {
		b, _ := json.Marshal(x)
		out = append(out, string(b))
	}
	return out
}

// rolePolicies returns the statements attached to the role whose logical id
// starts with prefix.
func rolePolicies(t *testing.T, s synthesized, prefix string) (string, []statement) {
	t.Helper()
	var roleID string
	for id := range resources(s, "AWS::IAM::Role") {
		if strings.HasPrefix(id, prefix) {
			if roleID != "" {
				t.Fatalf("two roles start with %s", prefix)
			}
			roleID = id
		}
	}
	if roleID == "" {
		t.Fatalf("no role %s*", prefix)
	}
	var out []statement
	for _, p := range resources(s, "AWS::IAM::Policy") {
		if !strings.Contains(jsonString(t, props(p)["Roles"]), `"`+roleID+`"`) {
			continue
		}
		var doc struct{ Statement []statement }
		if err := json.Unmarshal([]byte(jsonString(t, props(p)["PolicyDocument"])), &doc); err != nil {
			t.Fatal(err)
		}
		out = append(out, doc.Statement...)
	}
	return roleID, out
}

func ecrActions(stmts []statement) (onRepos, onStar []string) {
	for _, s := range stmts {
		for _, a := range s.actions() {
			if !strings.HasPrefix(a, "ecr:") {
				continue
			}
			if slices.Contains(s.resources(), `"*"`) {
				onStar = append(onStar, a)
			} else {
				onRepos = append(onRepos, a)
			}
		}
	}
	slices.Sort(onRepos)
	slices.Sort(onStar)
	return onRepos, onStar
}

func TestEachStageRoleHasExactlyItsECRGrants(t *testing.T) {
	want := map[string]struct {
		onRepos, onStar []string
	}{
		"ImagesBuildRole": {[]string{"ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:CompleteLayerUpload", "ecr:DescribeImages", "ecr:InitiateLayerUpload", "ecr:PutImage", "ecr:UploadLayerPart"}, []string{"ecr:GetAuthorizationToken"}},
		// Verify alone reads findings (and rescans the published image).
		"ImagesVerifyRole": {[]string{"ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:DescribeImageScanFindings", "ecr:GetDownloadUrlForLayer", "ecr:StartImageScan"}, []string{"ecr:GetAuthorizationToken"}},
		"ImagesReportRole": {nil, nil},
		// Publish moves manifests and tags, and pushes the evidence: blobs
		// and referrer manifests through the registry API.
		"ImagesPublishRole": {[]string{"ecr:BatchCheckLayerAvailability", "ecr:BatchDeleteImage", "ecr:BatchGetImage", "ecr:CompleteLayerUpload", "ecr:DescribeImages", "ecr:InitiateLayerUpload", "ecr:ListImages", "ecr:PutImage", "ecr:UploadLayerPart"}, []string{"ecr:GetAuthorizationToken"}},
	}
	repoIDs := slices.Sorted(maps.Keys(resources(def, "AWS::ECR::Repository")))
	for prefix, w := range want {
		_, stmts := rolePolicies(t, def, prefix)
		onRepos, onStar := ecrActions(stmts)
		if !slices.Equal(onRepos, w.onRepos) || !slices.Equal(onStar, w.onStar) {
			t.Errorf("%s: ECR actions on the repositories %v and on * %v; want %v and %v", prefix, onRepos, onStar, w.onRepos, w.onStar)
		}
		for _, s := range stmts {
			for _, a := range s.actions() {
				if strings.HasPrefix(a, "ecr:") && a != "ecr:GetAuthorizationToken" {
					var got []string
					for _, r := range s.resources() {
						for _, id := range repoIDs {
							if strings.Contains(r, `"`+id+`"`) {
								got = append(got, id)
							}
						}
					}
					if len(got) != len(s.resources()) || len(got) != len(repoIDs) {
						t.Errorf("%s: %s applies to %v, want exactly the runtime repositories %v", prefix, a, s.resources(), repoIDs)
					}
				}
			}
		}
		if prefix == "ImagesVerifyRole" {
			for _, a := range []string{"ecr:InitiateLayerUpload", "ecr:UploadLayerPart", "ecr:CompleteLayerUpload", "ecr:PutImage", "ecr:BatchDeleteImage"} {
				if slices.Contains(onRepos, a) {
					t.Errorf("Verify may %s: it must only pull", a)
				}
			}
		}
		if prefix == "ImagesPublishRole" {
			// It uploads the evidence's blobs, but never reads an image's
			// layers, and deletes only tags and drafts.
			if slices.Contains(onRepos, "ecr:GetDownloadUrlForLayer") {
				t.Errorf("Publish may ecr:GetDownloadUrlForLayer: it never reads layers")
			}
		}
	}
}

// Nothing in the stack may act on "*" but docker login (to the account's
// ECR, and for Build to ECR Public, the base images), Publish's
// freshness metric, held to its namespace, and with enhanced scanning
// Verify's reads of Amazon Inspector's findings.
func TestOnlyDockerLoginIsOnStar(t *testing.T) {
	ecrPublic := []string{"ecr-public:GetAuthorizationToken", "sts:GetServiceBearerToken"}
	for _, s := range []synthesized{def, configured} {
		for id, p := range resources(s, "AWS::IAM::Policy") {
			var doc struct{ Statement []statement }
			if err := json.Unmarshal([]byte(jsonString(t, props(p)["PolicyDocument"])), &doc); err != nil {
				t.Fatal(err)
			}
			for _, st := range doc.Statement {
				metric := slices.Equal(st.actions(), []string{"cloudwatch:PutMetricData"}) &&
					jsonString(t, st.Condition) == `{"StringEquals":{"cloudwatch:namespace":"`+stacks.MetricNamespace+`"}}`
				if slices.Contains(st.resources(), `"*"`) && !slices.Equal(st.actions(), []string{"ecr:GetAuthorizationToken"}) && !slices.Equal(st.actions(), ecrPublic) && !metric && !slices.Equal(st.actions(), enhancedFindings) {
					t.Errorf("%s grants %v on *", id, st.actions())
				}
			}
		}
	}
}

func TestPipelineRoleStartsOnlyItsOwnProjects(t *testing.T) {
	projectIDs := slices.Sorted(maps.Keys(resources(def, "AWS::CodeBuild::Project")))
	for id, p := range resources(def, "AWS::IAM::Policy") {
		var doc struct{ Statement []statement }
		if err := json.Unmarshal([]byte(jsonString(t, props(p)["PolicyDocument"])), &doc); err != nil {
			t.Fatal(err)
		}
		for _, st := range doc.Statement {
			for _, a := range st.actions() {
				if !strings.HasPrefix(a, "codebuild:Start") && !strings.HasPrefix(a, "codebuild:BatchGetBuild") && !strings.HasPrefix(a, "codebuild:Stop") {
					continue
				}
				for _, r := range st.resources() {
					if !slices.ContainsFunc(projectIDs, func(pid string) bool { return strings.Contains(r, `"`+pid+`"`) }) {
						t.Errorf("%s: %s on %s, which is not one of this pipeline's projects", id, a, r)
					}
				}
			}
		}
	}
}

func TestRepositoriesAreKeptScannedEncryptedAndDatedTagsImmutable(t *testing.T) {
	repos := resources(def, "AWS::ECR::Repository")
	var names []string
	for id, r := range repos {
		p := props(r)
		names = append(names, p["RepositoryName"].(string))
		// Retained on delete and replacement; removed when the stack's first
		// create rolls back, so that a retried deploy does not find the name taken.
		if r["DeletionPolicy"] != "RetainExceptOnCreate" || r["UpdateReplacePolicy"] != "Retain" {
			t.Errorf("%s: DeletionPolicy %v, UpdateReplacePolicy %v: deleting the stack must keep the organisation's images", id, r["DeletionPolicy"], r["UpdateReplacePolicy"])
		}
		runtime := strings.TrimPrefix(p["RepositoryName"].(string), config.DefaultRepositoryPrefix)
		if !strings.Contains(id, strings.ReplaceAll(runtime, "-", "")) {
			t.Errorf("logical id %s does not come from the runtime name %v", id, runtime)
		}
		if jsonString(t, p["ImageScanningConfiguration"]) != `{"ScanOnPush":true}` {
			t.Errorf("%s: scan on push is off", id)
		}
		if jsonString(t, p["EncryptionConfiguration"]) != `{"EncryptionType":"AES256"}` {
			t.Errorf("%s: encryption %v", id, p["EncryptionConfiguration"])
		}
		if p["ImageTagMutability"] != "MUTABLE_WITH_EXCLUSION" || jsonString(t, p["ImageTagMutabilityExclusionFilters"]) != `[{"ImageTagMutabilityExclusionFilterType":"WILDCARD","ImageTagMutabilityExclusionFilterValue":"*-r20*"}]` {
			t.Errorf("%s: dated tags are not immutable: %v %v", id, p["ImageTagMutability"], p["ImageTagMutabilityExclusionFilters"])
		}
		if p["RepositoryPolicyText"] != nil {
			t.Errorf("%s has a repository policy with no consumers configured: %v", id, p["RepositoryPolicyText"])
		}
	}
	var want []string
	for _, rt := range defaultList.Runtimes {
		want = append(want, config.DefaultRepositoryPrefix+rt.Name)
	}
	slices.Sort(names)
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Errorf("repositories %v, want one per runtime: %v", names, want)
	}
}

func TestConsumersMayOnlyPull(t *testing.T) {
	for id, r := range resources(configured, "AWS::ECR::Repository") {
		var doc struct{ Statement []statement }
		if err := json.Unmarshal([]byte(jsonString(t, props(r)["RepositoryPolicyText"])), &doc); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if len(doc.Statement) != 2 {
			t.Fatalf("%s: %d statements, want accounts and organization", id, len(doc.Statement))
		}
		for _, s := range doc.Statement {
			a := s.actions()
			slices.Sort(a)
			if !slices.Equal(a, []string{"ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"}) {
				t.Errorf("%s: consumers may %v", id, a)
			}
		}
		text := jsonString(t, doc.Statement)
		for _, want := range []string{"444455556666", "777788889999", `"aws:PrincipalOrgID":"o-a1b2c3d4e5"`} {
			if !strings.Contains(text, want) {
				t.Errorf("%s: policy lacks %s: %s", id, want, text)
			}
		}
	}
}

func TestAlerts(t *testing.T) {
	topics := resources(configured, "AWS::SNS::Topic")
	if len(topics) != 2 {
		t.Fatalf("%d topics, want the alert topic and the changes topic", len(topics))
	}
	for id, tp := range topics {
		if props(tp)["KmsMasterKeyId"] == nil {
			t.Errorf("topic %s is not encrypted", id)
		}
	}
	// Subscribers to changes are not subscribers to failures.
	subs := resources(configured, "AWS::SNS::Subscription")
	endpoints := map[string]string{}
	for _, sub := range subs {
		endpoints[jsonString(t, props(sub)["TopicArn"])] = props(sub)["Endpoint"].(string)
	}
	if len(subs) != 2 {
		t.Errorf("subscriptions %v, want the alert email and the changes email", endpoints)
	}
	for arn, e := range endpoints {
		if strings.Contains(arn, "Changes") != (e == "image-consumers@example.com") {
			t.Errorf("%s subscribes to %s", e, arn)
		}
	}
	topicID := ""
	for id := range topics {
		if strings.HasPrefix(id, "Alerts") {
			topicID = id
		}
	}
	subs = map[string]map[string]any{}
	for id, sub := range resources(configured, "AWS::SNS::Subscription") {
		if strings.Contains(jsonString(t, props(sub)["TopicArn"]), topicID) {
			subs[id] = sub
		}
	}
	if len(subs) != 1 || props(subs[slices.Sorted(maps.Keys(subs))[0]])["Endpoint"] != "platform@example.com" || props(subs[slices.Sorted(maps.Keys(subs))[0]])["Protocol"] != "email" {
		t.Errorf("email subscription: %v", subs)
	}
	if len(resources(def, "AWS::SNS::Subscription")) != 0 {
		t.Error("a subscription exists with no alarm email configured")
	}

	var failureRule bool
	for _, r := range resources(configured, "AWS::Events::Rule") {
		p := props(r)
		pattern := jsonString(t, p["EventPattern"])
		if strings.Contains(pattern, `"state":["FAILED"]`) {
			failureRule = true
			if !strings.Contains(pattern, "CodePipeline Pipeline Execution State Change") || !strings.Contains(jsonString(t, p["Targets"]), topicID) {
				t.Errorf("failure rule %s does not notify the topic: %s", pattern, jsonString(t, p["Targets"]))
			}
		}
	}
	if !failureRule {
		t.Error("no rule notifies on a failed execution")
	}

	// One staleness alarm per runtime-version, on the freshness metric
	// Publish puts, named in the alarm.
	alarms := resources(configured, "AWS::CloudWatch::Alarm")
	if len(alarms) != len(defaultList.Releases()) {
		t.Fatalf("%d alarms for %d runtime-versions", len(alarms), len(defaultList.Releases()))
	}
	covered := map[string]bool{}
	for id, r := range alarms {
		a := props(r)
		if a["EvaluationPeriods"] != 48.0 || a["DatapointsToAlarm"] != 48.0 || a["Period"] != 3600.0 || a["TreatMissingData"] != "breaching" || a["ComparisonOperator"] != "LessThanThreshold" || a["Threshold"] != 1.0 {
			t.Errorf("%s does not fire after 48 hours without a publish: %v", id, a)
		}
		if a["Namespace"] != stacks.MetricNamespace || a["MetricName"] != stacks.FreshMetric {
			t.Errorf("%s watches %v %v", id, a["Namespace"], a["MetricName"])
		}
		dims := map[string]any{}
		for _, d := range a["Dimensions"].([]any) {
			dims[d.(map[string]any)["Name"].(string)] = d.(map[string]any)["Value"]
		}
		rt, _ := dims["Runtime"].(string)
		v, _ := dims["Version"].(string)
		covered[rt+" "+v] = true
		if !strings.Contains(a["AlarmDescription"].(string), rt+" "+v) || jsonString(t, dims["Stack"]) != `{"Ref":"AWS::StackName"}` {
			t.Errorf("%s does not name its runtime-version and stack: %v %v", id, a["AlarmDescription"], dims)
		}
		if !strings.Contains(jsonString(t, a["AlarmActions"]), topicID) {
			t.Errorf("%s does not notify the topic: %v", id, a["AlarmActions"])
		}
	}
	for _, r := range defaultList.Releases() {
		if !covered[r.Runtime.Name+" "+r.Version] {
			t.Errorf("no staleness alarm for %s %s", r.Runtime.Name, r.Version)
		}
	}
	// The topic's policy replaces SNS's default: the alarms must be allowed.
	for id := range alarms {
		var mayPublish bool
		for _, tp := range resources(configured, "AWS::SNS::TopicPolicy") {
			doc := jsonString(t, props(tp)["PolicyDocument"])
			mayPublish = mayPublish || (strings.Contains(doc, `"Service":"cloudwatch.amazonaws.com"`) && strings.Contains(doc, id))
		}
		if !mayPublish {
			t.Errorf("the topic policy does not let %s publish", id)
		}
	}
	// No account-level CloudWatch Logs resource policy (a region holds 10).
	if n := len(resources(configured, "AWS::Logs::ResourcePolicy")); n != 0 {
		t.Errorf("%d CloudWatch Logs resource policies", n)
	}
}

// Each stage writes only its own records and reads only the stage before's;
// Publish keeps inventories and releases and reads holds; Report reads the
// Publish records and writes the changelog. Publish alone writes the
// consumers' parameters, under the stack's path; Report alone sends to the
// changes topic.
func TestRecordsGrants(t *testing.T) {
	for stage, want := range map[string]struct{ reads, writes []string }{
		"Build":   {nil, []string{"executions/*/build/*"}},
		"Verify":  {[]string{"executions/*/build/*", "executions/*/verify/*"}, []string{"executions/*/verify/*"}},
		"Publish": {[]string{"executions/*/publish/*", "executions/*/verify/*", "holds/*", "inventories/*", "releases/*"}, []string{"executions/*/publish/*", "inventories/*", "releases/*"}},
		"Report":  {[]string{"executions/*/publish/*", "executions/*/report/*"}, []string{"executions/*/changelog.txt", "executions/*/report/*"}},
	} {
		_, stmts := rolePolicies(t, def, "Images"+stage+"Role")
		var reads, writes, parameters, topics []string
		for _, st := range stmts {
			for _, r := range st.resources() {
				switch {
				case strings.Contains(r, `Records`):
					i := strings.Index(r, `"Arn"]},"/`)
					if i < 0 {
						continue // the bucket itself
					}
					key := strings.TrimSuffix(r[i+len(`"Arn"]},"/`):], `"]]}`)
					switch {
					case slices.Equal(st.actions(), []string{"s3:GetObject"}):
						reads = append(reads, key)
					case slices.Equal(st.actions(), []string{"s3:PutObject"}):
						writes = append(writes, key)
					default:
						t.Errorf("%s: %v on records", stage, st.actions())
					}
				case strings.Contains(r, ":ssm:"):
					parameters = append(parameters, fmt.Sprint(st.actions())+" "+r)
				case strings.Contains(r, "Changes"):
					topics = append(topics, fmt.Sprint(st.actions()))
				}
			}
		}
		slices.Sort(reads)
		slices.Sort(writes)
		if !slices.Equal(reads, want.reads) || !slices.Equal(writes, want.writes) {
			t.Errorf("%s reads %v and writes %v of the records; want %v and %v", stage, reads, writes, want.reads, want.writes)
		}
		if stage == "Publish" {
			if len(parameters) != 1 || !strings.Contains(parameters[0], "[ssm:GetParameter ssm:PutParameter]") || !strings.Contains(parameters[0], `:parameter/EvergreenImages/*"`) {
				t.Errorf("Publish's parameter grants %v, want get and put under /EvergreenImages/ only", parameters)
			}
		} else if len(parameters) > 0 {
			t.Errorf("%s may use parameters: %v", stage, parameters)
		}
		if stage == "Report" {
			if len(topics) != 1 || topics[0] != "[sns:Publish]" {
				t.Errorf("Report's topic grants %v, want sns:Publish on the changes topic", topics)
			}
		} else if len(topics) > 0 {
			t.Errorf("%s may publish to the changes topic: %v", stage, topics)
		}
	}
}

func TestLogsAndBuckets(t *testing.T) {
	for id, lg := range resources(def, "AWS::Logs::LogGroup") {
		p := props(lg)
		if p["RetentionInDays"] != 90.0 {
			t.Errorf("log group %s retention %v", id, p["RetentionInDays"])
		}
		if p["KmsKeyId"] == nil {
			t.Errorf("log group %s is not encrypted", id)
		}
	}
	for id, b := range resources(def, "AWS::S3::Bucket") {
		p := props(b)
		if jsonString(t, p["PublicAccessBlockConfiguration"]) != `{"BlockPublicAcls":true,"BlockPublicPolicy":true,"IgnorePublicAcls":true,"RestrictPublicBuckets":true}` {
			t.Errorf("bucket %s is not private", id)
		}
		if p["BucketEncryption"] == nil {
			t.Errorf("bucket %s is not encrypted", id)
		}
		if p["LifecycleConfiguration"] == nil {
			t.Errorf("bucket %s keeps objects forever", id)
		}
	}
	sslOnly := 0
	for _, bp := range resources(def, "AWS::S3::BucketPolicy") {
		if strings.Contains(jsonString(t, props(bp)), `"aws:SecureTransport":"false"`) {
			sslOnly++
		}
	}
	if buckets := len(resources(def, "AWS::S3::Bucket")); sslOnly != buckets {
		t.Errorf("%d of %d buckets refuse plain HTTP", sslOnly, buckets)
	}
}

// enhancedFindings are what ECR requires, besides DescribeImageScanFindings,
// of a principal reading enhanced scanning's findings (ECR User Guide, "IAM
// permissions required for enhanced scanning"); neither has resource-level
// permissions.
var enhancedFindings = []string{"inspector2:ListCoverage", "inspector2:ListFindings"}

// stageRoles are the CodeBuild roles of the four stages that run the
// binary, by stage name.
var stageRoles = []string{"Build", "Verify", "Publish", "Report"}

func logicalID(s synthesized, c any) string {
	return *s.stack.Stack.GetLogicalId(c.(awscdk.CfnElement))
}

// Issue 21, finding 7: with evergreen:enhancedScanning every Verify entry
// failed on its first run, because ECR answers enhanced findings only to a
// principal that may also list them in Amazon Inspector. Verify, and Verify
// alone, holds both actions exactly when the registry scans with
// Inspector, and its projects say which scanning the registry does.
func TestVerifyMayReadEnhancedFindingsWhenEnhancedScanningIsOn(t *testing.T) {
	for _, c := range []struct {
		name string
		s    synthesized
	}{{"default", def}, {"configured", configured}} {
		on := c.s.cfg.EnhancedScanning
		for _, stage := range stageRoles {
			_, stmts := rolePolicies(t, c.s, "Images"+stage+"Role")
			var got []string
			for _, st := range stmts {
				for _, a := range st.actions() {
					if strings.HasPrefix(a, "inspector2:") {
						got = append(got, a)
					}
				}
			}
			slices.Sort(got)
			var want []string
			if stage == "Verify" && on {
				want = enhancedFindings
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s (enhanced scanning %v): %s may %v of Amazon Inspector, want %v", c.name, on, stage, got, want)
			}
		}
		verify := 0
		for name, p := range projectsByStage(t, c.s) {
			vars := projectVars(p)
			_, set := vars["ENHANCED_SCANNING"]
			if !strings.HasPrefix(name, "verify") {
				if set {
					t.Errorf("%s: %s sets ENHANCED_SCANNING: only Verify reads findings", c.name, name)
				}
				continue
			}
			verify++
			if vars["ENHANCED_SCANNING"] != fmt.Sprint(on) {
				t.Errorf("%s: %s has ENHANCED_SCANNING=%v, want %v", c.name, name, vars["ENHANCED_SCANNING"], on)
			}
		}
		if verify == 0 {
			t.Errorf("%s: no Verify project", c.name)
		}
	}
}

// recordKeys are the records-bucket keys a statement names, or nil when it
// names none.
func recordKeys(st statement, recordsID string) []string {
	var out []string
	prefix := `{"Fn::Join":["",[{"Fn::GetAtt":["` + recordsID + `","Arn"]},"/`
	for _, r := range st.resources() {
		if strings.HasPrefix(r, prefix) {
			out = append(out, strings.TrimSuffix(strings.TrimPrefix(r, prefix), `"]]}`))
		}
	}
	return out
}

// Issue 21, finding 9: without s3:ListBucket a missing record reads as 403
// AccessDenied, which Publish took for "no hold" (it failed open). Every
// role that reads records may list the bucket, held by an s3:prefix
// condition to exactly the keys it reads, so a missing record is a 404 and
// anything else an error; and no role may list the bucket unconditionally.
func TestAMissingRecordReadsAsNotFoundNotAccessDenied(t *testing.T) {
	for _, c := range []struct {
		name string
		s    synthesized
	}{{"default", def}, {"configured", configured}} {
		recordsID := logicalID(c.s, c.s.stack.Pipeline.Records.Node().DefaultChild())
		bucketArn := `{"Fn::GetAtt":["` + recordsID + `","Arn"]}`
		for _, stage := range stageRoles {
			_, stmts := rolePolicies(t, c.s, "Images"+stage+"Role")
			var reads, listed []string
			lists := 0
			for _, st := range stmts {
				if slices.Equal(st.actions(), []string{"s3:GetObject"}) {
					reads = append(reads, recordKeys(st, recordsID)...)
				}
				if !slices.Contains(st.actions(), "s3:ListBucket") {
					continue
				}
				lists++
				if !slices.Equal(st.actions(), []string{"s3:ListBucket"}) || !slices.Equal(st.resources(), []string{bucketArn}) {
					t.Errorf("%s: %s lists with %v on %v, want s3:ListBucket on the records bucket alone", c.name, stage, st.actions(), st.resources())
				}
				cond, _ := st.Condition.(map[string]any)
				like, _ := cond["StringLike"].(map[string]any)
				if len(cond) != 1 || len(like) != 1 || like["s3:prefix"] == nil {
					t.Errorf("%s: %s lists the records bucket under %s, want only an s3:prefix condition", c.name, stage, jsonString(t, st.Condition))
				}
				listed = append(listed, strs(like["s3:prefix"])...)
			}
			slices.Sort(reads)
			slices.Sort(listed)
			if len(reads) == 0 {
				if lists > 0 {
					t.Errorf("%s: %s reads no records but may list the bucket", c.name, stage)
				}
				continue
			}
			if lists != 1 || !slices.Equal(listed, reads) {
				t.Errorf("%s: %s reads %v and may list %v (%d statements), want one listing of exactly the keys it reads", c.name, stage, reads, listed, lists)
			}
		}
		for id, p := range resources(c.s, "AWS::IAM::Policy") {
			var doc struct{ Statement []statement }
			if err := json.Unmarshal([]byte(jsonString(t, props(p)["PolicyDocument"])), &doc); err != nil {
				t.Fatal(err)
			}
			for _, st := range doc.Statement {
				if slices.ContainsFunc(st.actions(), func(a string) bool { return a == "s3:ListBucket" || a == "s3:List*" }) &&
					slices.Contains(st.resources(), bucketArn) && st.Condition == nil {
					t.Errorf("%s: %s lists the records bucket without a prefix condition", c.name, id)
				}
			}
		}
	}
}

// Issue 21, finding 10: the records key was also the CodeBuild projects'
// EncryptionKey, which the CDK grants in full to each project's role, so
// the narrow KMS statement narrowed nothing. The artifacts and the projects
// now have a key of their own, the records bucket keeps its key (and its
// logical id), and each stage role may use the records key exactly as its
// records need: Decrypt to read, and GenerateDataKey too where it writes.
func TestEachStageRoleHoldsTheRecordsKeyOnlyForItsRecords(t *testing.T) {
	for _, c := range []struct {
		name string
		s    synthesized
	}{{"default", def}, {"configured", configured}} {
		recordsKey := logicalID(c.s, c.s.stack.Key.Node().DefaultChild())
		artifactsKey := logicalID(c.s, c.s.stack.ArtifactsKey.Node().DefaultChild())
		if recordsKey == artifactsKey {
			t.Fatalf("%s: one key for records and artifacts", c.name)
		}
		recordsID := logicalID(c.s, c.s.stack.Pipeline.Records.Node().DefaultChild())
		artifactsID := logicalID(c.s, c.s.stack.Pipeline.ArtifactBucket.Node().DefaultChild())
		buckets := resources(c.s, "AWS::S3::Bucket")
		for id, key := range map[string]string{recordsID: recordsKey, artifactsID: artifactsKey} {
			if got := jsonString(t, props(buckets[id])["BucketEncryption"]); !strings.Contains(got, `"`+key+`"`) {
				t.Errorf("%s: bucket %s is encrypted with %s, want %s", c.name, id, got, key)
			}
		}
		for id, p := range resources(c.s, "AWS::CodeBuild::Project") {
			if got := jsonString(t, props(p)["EncryptionKey"]); !strings.Contains(got, `"`+artifactsKey+`"`) {
				t.Errorf("%s: project %s's EncryptionKey is %s, want the artifacts key %s", c.name, id, got, artifactsKey)
			}
		}

		for _, stage := range append(slices.Clone(stageRoles), "Tool") {
			_, stmts := rolePolicies(t, c.s, "Images"+stage+"Role")
			var reads, writes bool
			var got []string
			for _, st := range stmts {
				keys := recordKeys(st, recordsID)
				reads = reads || (len(keys) > 0 && slices.Contains(st.actions(), "s3:GetObject"))
				writes = writes || (len(keys) > 0 && slices.Contains(st.actions(), "s3:PutObject"))
				for _, r := range st.resources() {
					if r == `"*"` && slices.ContainsFunc(st.actions(), func(a string) bool { return strings.HasPrefix(a, "kms:") }) {
						t.Errorf("%s: %s may %v on every key", c.name, stage, st.actions())
					}
					if strings.Contains(r, `"`+recordsKey+`"`) {
						got = append(got, st.actions()...)
					}
				}
			}
			slices.Sort(got)
			var want []string
			if reads || writes {
				want = append(want, "kms:Decrypt")
			}
			if writes {
				want = append(want, "kms:GenerateDataKey")
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s: %s (reads records %v, writes records %v) may %v with the records key, want exactly %v", c.name, stage, reads, writes, got, want)
			}
		}
	}
}
