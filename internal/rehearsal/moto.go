package rehearsal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/evergreen-images/evergreen/internal/awsops"
	"github.com/evergreen-images/evergreen/internal/records"
)

// S3, SSM and SNS are moto (PyPI moto[server], pinned in
// .ci/install-moto.sh, installed into .venv by make setup), a third-party
// emulator of the AWS APIs: the binary reaches it through AWS_ENDPOINT_URL
// with fake credentials, as it reaches AWS through the SDK. The rehearsal
// creates what the template would (the records bucket, versioned; the
// topics) and reads back what the stages did through the same APIs: the
// objects and their versions, the parameters, and the SNS
// messages (an SQS queue subscribed to every topic, as a subscriber sees
// them).
//
// moto gap: its CloudWatch does not speak the protocol of the SDK's
// CloudWatch client (Smithy RPC v2 CBOR): the datapoints go to the
// rehearsal's own PutMetricData (cloudwatch_standin.go). moto's
// GetMetricData would have had two more (it ignores the namespace when the
// query has dimensions, and truncates the window to whole seconds).

// Moto is a moto_server the rehearsal started.
type Moto struct {
	URL     string
	Account string
	Region  string
	cmd     *exec.Cmd
	done    chan struct{}
	cfg     aws.Config

	mu       sync.Mutex
	queueURL string
	messages []SNSMessage
}

// StartMoto starts moto_server (from .venv/bin under repo) on a free port
// of 127.0.0.1, logging to dir/moto.log, as account in region.
func StartMoto(repo, dir, account, region string) (*Moto, error) {
	bin := filepath.Join(repo, ".venv", "bin", "moto_server")
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("moto is not installed (%s): run make setup, which runs .ci/install-moto.sh", bin)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	logf, err := os.Create(filepath.Join(dir, "moto.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", fmt.Sprint(port))
	// The account the template's ARNs name (moto's default is another).
	cmd.Env = append(os.Environ(), "MOTO_ACCOUNT_ID="+account)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	m := &Moto{URL: fmt.Sprintf("http://127.0.0.1:%d", port), Account: account, Region: region, cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); logf.Close(); close(m.done) }()
	for deadline := time.Now().Add(30 * time.Second); ; {
		if resp, err := http.Get(m.URL + "/moto-api/"); err == nil {
			resp.Body.Close()
			break
		}
		select {
		case <-m.done:
			return nil, fmt.Errorf("moto_server exited at start (log %s)", filepath.Join(dir, "moto.log"))
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			m.Stop()
			return nil, errors.New("moto_server did not answer within 30 s")
		}
	}
	m.cfg, err = awsconfig.LoadDefaultConfig(context.Background(),
		awsconfig.WithRegion(region),
		awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("testing", "testing", "")),
		awsconfig.WithBaseEndpoint(m.URL),
		// Not the caller's files: nothing of the machine's AWS set-up.
		awsconfig.WithSharedConfigFiles(nil), awsconfig.WithSharedCredentialsFiles(nil))
	if err != nil {
		m.Stop()
		return nil, err
	}
	return m, nil
}

// Stop ends moto_server and waits for it.
func (m *Moto) Stop() {
	if m == nil || m.cmd.Process == nil {
		return
	}
	syscall.Kill(-m.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(5 * time.Second):
		syscall.Kill(-m.cmd.Process.Pid, syscall.SIGKILL)
		<-m.done
	}
}

// Config is an SDK configuration for moto.
func (m *Moto) Config() aws.Config { return m.cfg }

// BuildEnv is what a build needs to reach moto: the endpoint and fake
// credentials (the build role's, in CodeBuild).
func (m *Moto) BuildEnv() []string {
	if m == nil {
		return nil
	}
	return []string{"AWS_ENDPOINT_URL=" + m.URL, "AWS_ACCESS_KEY_ID=testing", "AWS_SECRET_ACCESS_KEY=testing"}
}

// Create makes the template's buckets (versioned, as the records bucket
// is) and topics, and subscribes one queue to every topic.
func (m *Moto) Create(ctx context.Context, buckets, topics []string) error {
	s3c := awsops.NewS3(m.cfg)
	for _, b := range buckets {
		if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b),
			// Outside us-east-1, S3 (and moto) wants the region as the location.
			CreateBucketConfiguration: &s3types.CreateBucketConfiguration{LocationConstraint: s3types.BucketLocationConstraint(m.Region)}}); err != nil {
			return fmt.Errorf("moto: create bucket %s: %w", b, err)
		}
		if _, err := s3c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String(b),
			VersioningConfiguration: &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatusEnabled}}); err != nil {
			return fmt.Errorf("moto: versioning of %s: %w", b, err)
		}
	}
	qc := sqs.NewFromConfig(m.cfg)
	q, err := qc.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("rehearsal-sns-messages")})
	if err != nil {
		return fmt.Errorf("moto: create queue: %w", err)
	}
	m.queueURL = aws.ToString(q.QueueUrl)
	queueArn := "arn:aws:sqs:" + m.Region + ":" + m.Account + ":rehearsal-sns-messages"
	nc := sns.NewFromConfig(m.cfg)
	for _, arn := range topics {
		out, err := nc.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String(arn[strings.LastIndex(arn, ":")+1:])})
		if err != nil {
			return fmt.Errorf("moto: create topic %s: %w", arn, err)
		}
		if aws.ToString(out.TopicArn) != arn {
			return fmt.Errorf("moto made the topic %s, the template's is %s", aws.ToString(out.TopicArn), arn)
		}
		if _, err := nc.Subscribe(ctx, &sns.SubscribeInput{TopicArn: aws.String(arn), Protocol: aws.String("sqs"), Endpoint: aws.String(queueArn)}); err != nil {
			return fmt.Errorf("moto: subscribe to %s: %w", arn, err)
		}
	}
	return nil
}

// GetObject reads an object; ok is false when there is none.
func (m *Moto) GetObject(bucket, key string) (data []byte, ok bool, err error) {
	return records.Store{S3: awsops.NewS3(m.cfg), Bucket: bucket}.Get(context.Background(), key)
}

// MoveObject moves an object to another key (a copy, then a delete).
func (m *Moto) MoveObject(bucket, from, to string) error {
	s3c := awsops.NewS3(m.cfg)
	ctx := context.Background()
	if _, err := s3c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String(bucket), Key: aws.String(to), CopySource: aws.String(bucket + "/" + from)}); err != nil {
		return fmt.Errorf("moto: copy s3://%s/%s to %s: %w", bucket, from, to, err)
	}
	if _, err := s3c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(from)}); err != nil {
		return fmt.Errorf("moto: delete s3://%s/%s: %w", bucket, from, err)
	}
	return nil
}

// S3Write is one object version written.
type S3Write struct {
	Bucket, Key, VersionID string
}

// S3Writes lists every object version of bucket (the bucket is
// versioned: a write is a new version, even of the same bytes).
func (m *Moto) S3Writes(bucket string) ([]S3Write, error) {
	var out []S3Write
	s3c := awsops.NewS3(m.cfg)
	p := s3.NewListObjectVersionsPaginator(s3c, &s3.ListObjectVersionsInput{Bucket: aws.String(bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			return nil, fmt.Errorf("moto: list object versions of %s: %w", bucket, err)
		}
		for _, v := range page.Versions {
			out = append(out, S3Write{bucket, aws.ToString(v.Key), aws.ToString(v.VersionId)})
		}
	}
	return out, nil
}

// SNSMessage is one message published to a topic, as its subscriber got it.
type SNSMessage struct {
	TopicArn  string
	Subject   string
	Message   string
	MessageID string
}

// SNSMessages lists every message published so far, in the order the
// queue delivered them.
func (m *Moto) SNSMessages() ([]SNSMessage, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	qc := sqs.NewFromConfig(m.cfg)
	for {
		out, err := qc.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(m.queueURL), MaxNumberOfMessages: 10})
		if err != nil {
			return nil, fmt.Errorf("moto: receive from the topics' queue: %w", err)
		}
		if len(out.Messages) == 0 {
			break
		}
		for _, msg := range out.Messages {
			// SNS's envelope (no raw message delivery): it carries the
			// topic and the subject.
			var env struct{ TopicArn, Subject, Message, MessageId string }
			if err := json.Unmarshal([]byte(aws.ToString(msg.Body)), &env); err != nil {
				return nil, fmt.Errorf("a message in the topics' queue is not SNS's envelope: %w", err)
			}
			m.messages = append(m.messages, SNSMessage{env.TopicArn, env.Subject, env.Message, env.MessageId})
			if _, err := qc.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: aws.String(m.queueURL), ReceiptHandle: msg.ReceiptHandle}); err != nil {
				return nil, err
			}
		}
	}
	return slices.Clone(m.messages), nil
}

// Parameter is one SSM parameter.
type Parameter struct {
	Name    string
	Value   string
	Version int64
}

// Parameters reads every parameter under path (recursively), by name.
func (m *Moto) Parameters(path string) (map[string]Parameter, error) {
	out := map[string]Parameter{}
	p := ssm.NewGetParametersByPathPaginator(ssm.NewFromConfig(m.cfg), &ssm.GetParametersByPathInput{Path: aws.String(path), Recursive: aws.Bool(true)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			return nil, fmt.Errorf("moto: parameters under %s: %w", path, err)
		}
		for _, pm := range page.Parameters {
			out[aws.ToString(pm.Name)] = Parameter{aws.ToString(pm.Name), aws.ToString(pm.Value), pm.Version}
		}
	}
	return out, nil
}

// ParameterWrites counts the writes of every parameter under path: each
// write is a new version, even of the same value.
func (m *Moto) ParameterWrites(path string) (int64, error) {
	ps, err := m.Parameters(path)
	var n int64
	for _, p := range ps {
		n += p.Version
	}
	return n, err
}

func sameDimensions(a, b []Dimension) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}
