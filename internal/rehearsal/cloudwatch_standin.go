package rehearsal

import (
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/smithy-go/encoding/cbor"
)

// The CloudWatch stand-in: PutMetricData only, reached through
// AWS_ENDPOINT_URL_CLOUDWATCH. moto gap: the SDK's CloudWatch client
// (service/cloudwatch v1.76) speaks Smithy RPC v2 CBOR (POST
// /service/GraniteServiceVersion20100801/operation/<Op>), which moto 5.2.5
// does not route (404): so the datapoints Publish puts are kept here, and
// the alarms are evaluated over them (cloudwatch.go). What it keeps of
// CloudWatch: a namespace under AWS/ is refused, a dimension needs a name
// and a value, at most 30 dimensions, a datapoint without a timestamp is
// stamped when received. Not emulated: IAM (the role's namespace
// condition), statistic sets, storage resolution.

const cloudWatchPathPrefix = "/service/GraniteServiceVersion20100801/operation/"

// Datapoint is one datapoint PutMetricData accepted.
type Datapoint struct {
	Namespace  string
	MetricName string
	Dimensions []Dimension
	Value      float64
	Unit       string
	Timestamp  time.Time
}

// CloudWatch keeps the datapoints put.
type CloudWatch struct {
	Now    func() time.Time
	mu     sync.Mutex
	points []Datapoint
}

// Datapoints lists every datapoint put so far.
func (c *CloudWatch) Datapoints() []Datapoint {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.points)
}

func (c *CloudWatch) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	op := strings.TrimPrefix(req.URL.Path, cloudWatchPathPrefix)
	var r io.Reader = req.Body
	if req.Header.Get("Content-Encoding") == "gzip" {
		// The SDK compresses PutMetricData (the API's request compression).
		zr, err := gzip.NewReader(req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r = zr
	}
	body, _ := io.ReadAll(r)
	fail := func(status int, code, msg string) {
		w.Header().Set("Content-Type", "application/cbor")
		w.Header().Set("Smithy-Protocol", "rpc-v2-cbor")
		w.WriteHeader(status)
		w.Write(cbor.Encode(cbor.Map{"__type": cbor.String(code), "message": cbor.String(msg)}))
	}
	if op != "PutMetricData" {
		fail(http.StatusBadRequest, "InvalidAction", "the rehearsal stands in for CloudWatch's PutMetricData only, not "+op)
		return
	}
	points, err := c.parsePut(body)
	if err != nil {
		fail(http.StatusBadRequest, "InvalidParameterValue", err.Error())
		return
	}
	c.mu.Lock()
	c.points = append(c.points, points...)
	c.mu.Unlock()
	w.Header().Set("Content-Type", "application/cbor")
	w.Header().Set("Smithy-Protocol", "rpc-v2-cbor")
	w.Write(cbor.Encode(cbor.Map{}))
}

func (c *CloudWatch) parsePut(body []byte) ([]Datapoint, error) {
	v, err := cbor.Decode(body)
	if err != nil {
		return nil, fmt.Errorf("the request is not CBOR: %v", err)
	}
	in, ok := v.(cbor.Map)
	if !ok {
		return nil, fmt.Errorf("the request is not a CBOR map")
	}
	str := func(m cbor.Map, k string) string { s, _ := m[k].(cbor.String); return string(s) }
	ns := str(in, "Namespace")
	if ns == "" || strings.HasPrefix(ns, "AWS/") {
		return nil, fmt.Errorf("The value %s for parameter Namespace is invalid.", ns)
	}
	data, _ := in["MetricData"].(cbor.List)
	if len(data) == 0 {
		return nil, fmt.Errorf("The parameter MetricData is required.")
	}
	var out []Datapoint
	for i, x := range data {
		md, ok := x.(cbor.Map)
		if !ok {
			return nil, fmt.Errorf("MetricData.member.%d is not a structure", i+1)
		}
		d := Datapoint{Namespace: ns, MetricName: str(md, "MetricName"), Unit: str(md, "Unit"), Timestamp: c.Now().UTC()}
		if d.MetricName == "" {
			return nil, fmt.Errorf("The parameter MetricData.member.%d.MetricName is required.", i+1)
		}
		if val, ok := md["Value"]; ok {
			if d.Value, err = cbor.AsFloat64(val); err != nil {
				return nil, fmt.Errorf("MetricData.member.%d.Value: %v", i+1, err)
			}
		}
		if ts, ok := md["Timestamp"]; ok {
			if d.Timestamp, err = cbor.AsTime(ts); err != nil {
				return nil, fmt.Errorf("MetricData.member.%d.Timestamp: %v", i+1, err)
			}
		}
		dims, _ := md["Dimensions"].(cbor.List)
		if len(dims) > 30 {
			return nil, fmt.Errorf("The collection MetricData.member.%d.Dimensions must not have a size greater than 30.", i+1)
		}
		for j, y := range dims {
			dm, _ := y.(cbor.Map)
			n, val := str(dm, "Name"), str(dm, "Value")
			if n == "" || val == "" {
				return nil, fmt.Errorf("The value for parameter MetricData.member.%d.Dimensions.member.%d is empty.", i+1, j+1)
			}
			d.Dimensions = append(d.Dimensions, Dimension{n, val})
		}
		out = append(out, d)
	}
	return out, nil
}

// Sum is the Sum of the alarm's metric over [from, to]: the datapoints of
// its namespace and name with exactly its dimensions.
func (c *CloudWatch) Sum(a Alarm, from, to time.Time) float64 {
	sum := 0.0
	for _, d := range c.Datapoints() {
		if d.Namespace == a.Namespace && d.MetricName == a.MetricName && sameDimensions(d.Dimensions, a.Dimensions) &&
			!d.Timestamp.Before(from) && !d.Timestamp.After(to) {
			sum += d.Value
		}
	}
	return sum
}
