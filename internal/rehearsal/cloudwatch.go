package rehearsal

import (
	"fmt"
)

// The template's staleness alarms, evaluated over the metric data the
// Publish runs put into moto (moto.go reads it): an alarm selects
// datapoints by namespace, metric name and exactly its dimension set (a
// datapoint with one dimension more or less is another metric). What the
// evaluation does not keep: statistics other than Sum, periods (the
// rehearsal evaluates one window), the 48-period evaluation, IAM (the
// role's namespace condition; the stack's tests check the policy).

// Dimension is a CloudWatch dimension.
type Dimension struct {
	Name  string `json:"name"`
	Value string `json:"value"`
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

// Breaching compares the statistic of one window with the threshold; no
// data is a Sum of 0, as missing data is breaching in the template
// (TreatMissingData).
func (a Alarm) Breaching(sum float64) (bool, error) {
	if a.Statistic != "Sum" {
		return false, fmt.Errorf("alarm %s: statistic %q is not evaluated by the rehearsal (only Sum)", a.LogicalID, a.Statistic)
	}
	switch a.Comparison {
	case "LessThanThreshold":
		return sum < a.Threshold, nil
	case "LessThanOrEqualToThreshold":
		return sum <= a.Threshold, nil
	case "GreaterThanThreshold":
		return sum > a.Threshold, nil
	case "GreaterThanOrEqualToThreshold":
		return sum >= a.Threshold, nil
	}
	return false, fmt.Errorf("alarm %s: comparison %q is not evaluated by the rehearsal", a.LogicalID, a.Comparison)
}
