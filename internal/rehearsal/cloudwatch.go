package rehearsal

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The CloudWatch stand-in: `aws cloudwatch put-metric-data` with one
// datapoint, recorded in StateDir/metrics.jsonl, and the evaluation of the
// template's alarms over what was recorded.
//
// What it keeps of CloudWatch: the request's validation (a namespace under
// AWS/ is refused, the unit must be one of CloudWatch's, at most 30
// dimensions, no empty or repeated dimension names) and the way an alarm
// selects datapoints (namespace, metric name and exactly its dimension set;
// a datapoint with one dimension more or less is another metric). What it
// does not keep: IAM (the role's namespace condition is not checked),
// statistics other than Sum, periods (the rehearsal evaluates one window).

var putMetricDataOptions = []string{"namespace", "metric-name", "value", "unit", "dimensions", "timestamp"}

var cloudWatchUnits = []string{"Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes",
	"Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count", "Bytes/Second", "Kilobytes/Second",
	"Megabytes/Second", "Gigabytes/Second", "Terabytes/Second", "Bits/Second", "Kilobits/Second", "Megabits/Second",
	"Gigabits/Second", "Terabits/Second", "Count/Second", "None"}

// Dimension is a CloudWatch dimension.
type Dimension struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Datapoint is one put-metric-data call the stand-in accepted.
type Datapoint struct {
	Namespace  string      `json:"namespace"`
	MetricName string      `json:"metricName"`
	Dimensions []Dimension `json:"dimensions"`
	Value      float64     `json:"value"`
	Unit       string      `json:"unit,omitempty"`
	Timestamp  time.Time   `json:"timestamp"`
}

const metricsFile = "metrics.jsonl"

// Datapoints lists every datapoint put so far.
func (c *StandInConfig) Datapoints() ([]Datapoint, error) {
	return readJSONLines[Datapoint](c, metricsFile)
}

func (e *ECR) putMetricData(ca cliArgs, args []string) error {
	const op = "PutMetricData"
	ns, err := ca.one("namespace", true)
	if err != nil {
		return err
	}
	name, err := ca.one("metric-name", true)
	if err != nil {
		return err
	}
	vs, err := ca.one("value", true)
	if err != nil {
		return err
	}
	value, err := strconv.ParseFloat(vs, 64)
	if err != nil {
		return usageError("\nError parsing parameter '--value': invalid float value: %q", vs)
	}
	unit, _ := ca.one("unit", false)
	dims, _ := ca.one("dimensions", false)
	ts, _ := ca.one("timestamp", false)
	if strings.HasPrefix(ns, "AWS/") {
		return serviceError(op, "InvalidParameterValue", "The value %s for parameter Namespace is invalid.", ns)
	}
	if unit != "" && !slices.Contains(cloudWatchUnits, unit) {
		return serviceError(op, "InvalidParameterValue", "The value %s for parameter MetricData.member.1.Unit is invalid.", unit)
	}
	d := Datapoint{Namespace: ns, MetricName: name, Value: value, Unit: unit, Timestamp: e.Now().UTC()}
	if ts != "" {
		t, err := time.Parse(time.RFC3339, ts)
		if err != nil {
			return usageError("\nError parsing parameter '--timestamp': Invalid timestamp %q", ts)
		}
		d.Timestamp = t.UTC()
	}
	if dims != "" {
		seen := map[string]bool{}
		for _, kv := range strings.Split(dims, ",") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return usageError("\nError parsing parameter '--dimensions': Expected: '=', received: '%s' for input:\n%s", kv, dims)
			}
			if v == "" {
				return serviceError(op, "InvalidParameterValue", "The value for parameter MetricData.member.1.Dimensions.member.%d.Value is empty.", len(d.Dimensions)+1)
			}
			if seen[k] {
				return serviceError(op, "InvalidParameterValue", "The dimension %s is given twice.", k)
			}
			seen[k] = true
			d.Dimensions = append(d.Dimensions, Dimension{k, v})
		}
		if len(d.Dimensions) > 30 {
			return serviceError(op, "InvalidParameterValue", "The collection MetricData.member.1.Dimensions must not have a size greater than 30.")
		}
	}
	if e.Cfg.countCall("put-metric-data", args) {
		return serviceError(op, "Throttling", "Rate exceeded (injected by the rehearsal)")
	}
	return e.Cfg.appendJSONLine(metricsFile, d)
}

// Alarm is an AWS::CloudWatch::Alarm of the template on one metric.
type Alarm struct {
	LogicalID  string
	Namespace  string
	MetricName string
	Dimensions []Dimension // resolved
	Statistic  string
	Comparison string
	Threshold  float64
}

// Dimension returns the value of the alarm's dimension name.
func (a Alarm) Dimension(name string) string {
	for _, d := range a.Dimensions {
		if d.Name == name {
			return d.Value
		}
	}
	return ""
}

// Selects reports whether the alarm's metric is the datapoint's: the same
// namespace and name and exactly the same dimensions.
func (a Alarm) Selects(d Datapoint) bool {
	if d.Namespace != a.Namespace || d.MetricName != a.MetricName || len(d.Dimensions) != len(a.Dimensions) {
		return false
	}
	for _, x := range a.Dimensions {
		if !slices.Contains(d.Dimensions, x) {
			return false
		}
	}
	return true
}

// Breaching evaluates the alarm over the datapoints in [from, to], as one
// period, with missing data breaching (the template's TreatMissingData).
// It returns the statistic too.
func (a Alarm) Breaching(points []Datapoint, from, to time.Time) (bool, float64, error) {
	if a.Statistic != "Sum" {
		return false, 0, fmt.Errorf("alarm %s: statistic %q is not evaluated by the rehearsal (only Sum)", a.LogicalID, a.Statistic)
	}
	sum := 0.0
	for _, d := range points {
		if a.Selects(d) && !d.Timestamp.Before(from) && !d.Timestamp.After(to) {
			sum += d.Value
		}
	}
	switch a.Comparison {
	case "LessThanThreshold":
		return sum < a.Threshold, sum, nil
	case "LessThanOrEqualToThreshold":
		return sum <= a.Threshold, sum, nil
	case "GreaterThanThreshold":
		return sum > a.Threshold, sum, nil
	case "GreaterThanOrEqualToThreshold":
		return sum >= a.Threshold, sum, nil
	}
	return false, sum, fmt.Errorf("alarm %s: comparison %q is not evaluated by the rehearsal", a.LogicalID, a.Comparison)
}
