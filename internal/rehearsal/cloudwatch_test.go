package rehearsal

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
)

// The SDK's own client puts a datapoint; an alarm sees it only with
// exactly its namespace, name and dimensions, within its window.
func TestPutMetricDataReachesTheAlarmWithExactlyItsDimensions(t *testing.T) {
	now := time.Date(2026, 12, 1, 4, 0, 0, 0, time.UTC)
	cw := &CloudWatch{Now: func() time.Time { return now }}
	srv := httptest.NewServer(cw)
	defer srv.Close()
	c := cloudwatch.New(cloudwatch.Options{Region: "eu-west-1", BaseEndpoint: aws.String(srv.URL), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider("testing", "testing", "")})
	put := func(ns string, dims ...string) error {
		var ds []cwtypes.Dimension
		for i := 0; i < len(dims); i += 2 {
			ds = append(ds, cwtypes.Dimension{Name: aws.String(dims[i]), Value: aws.String(dims[i+1])})
		}
		_, err := c.PutMetricData(ctx, &cloudwatch.PutMetricDataInput{Namespace: aws.String(ns), MetricData: []cwtypes.MetricDatum{
			{MetricName: aws.String("Fresh"), Value: aws.Float64(1), Unit: cwtypes.StandardUnitCount, Dimensions: ds}}})
		return err
	}
	if err := put("Evergreen", "Stack", "S", "Runtime", "node", "Version", "22"); err != nil {
		t.Fatal(err)
	}
	if err := put("Other", "Stack", "S", "Runtime", "node", "Version", "22"); err != nil {
		t.Fatal(err)
	}
	if err := put("Evergreen", "Stack", "S", "Runtime", "node"); err != nil {
		t.Fatal(err)
	}
	if err := put("AWS/Evergreen", "Stack", "S"); code(err) != "InvalidParameterValue" {
		t.Fatalf("a namespace under AWS/: %v", err)
	}
	a := Alarm{Namespace: "Evergreen", MetricName: "Fresh", Dimensions: []Dimension{{"Version", "22"}, {"Runtime", "node"}, {"Stack", "S"}}, Statistic: "Sum", Comparison: "LessThanThreshold", Threshold: 1}
	if s := cw.Sum(a, now.Add(-time.Minute), now.Add(time.Minute)); s != 1 {
		t.Fatalf("Sum %v, want 1 (one datapoint with exactly the alarm's metric)", s)
	}
	if s := cw.Sum(a, now.Add(time.Second), now.Add(time.Minute)); s != 0 {
		t.Fatalf("outside the window: %v", s)
	}
	if b, _ := a.Breaching(1); b {
		t.Fatal("a fresh datapoint breaches")
	}
}
