package rehearsal

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// The SNS stand-in: `aws sns publish` to one of the template's topics,
// each message recorded in StateDir/sns-messages.jsonl (the scenarios read
// them back).
//
// What it keeps of SNS: the topic must exist (one of the template's
// AWS::SNS::Topic resources, under the ARN CloudFormation would give it:
// the commands must take it from their variable); the subject's rules (at
// most 100 characters, ASCII, starting with a letter, a digit or
// punctuation, no line break or control character); a message that is not
// empty and at most 256 KiB (262144 bytes, UTF-8). What it does not keep:
// delivery to subscribers, message attributes, structures and FIFO
// options, encryption (the topic's KMS key and the role's rights on it),
// IAM.

var snsPublishOptions = []string{"topic-arn", "subject", "message",
	// Real options the stand-in does not emulate: refused loudly below.
	"target-arn", "phone-number", "message-structure", "message-attributes", "message-deduplication-id", "message-group-id"}

// SNSMessage is one message the stand-in accepted.
type SNSMessage struct {
	Time      time.Time `json:"time"`
	TopicArn  string    `json:"topicArn"`
	Subject   string    `json:"subject,omitempty"`
	Message   string    `json:"message"`
	MessageID string    `json:"messageId"`
}

const snsMessagesFile = "sns-messages.jsonl"

// SNSMessages lists every message published so far, in order.
func (c *StandInConfig) SNSMessages() ([]SNSMessage, error) {
	return readJSONLines[SNSMessage](c, snsMessagesFile)
}

// validSubject applies SNS's rules for Subject.
func validSubject(s string) bool {
	if s == "" || len(s) > 100 {
		return false
	}
	for _, ch := range s {
		if ch > 126 || ch < 32 {
			return false // not ASCII, or a line break or control character
		}
	}
	first := s[0]
	return first != ' ' // a letter, a digit or punctuation
}

func (e *ECR) snsPublish(ca cliArgs, args []string) (any, error) {
	const op = "Publish"
	for _, k := range []string{"target-arn", "phone-number", "message-structure", "message-attributes", "message-deduplication-id", "message-group-id"} {
		if _, ok := ca.opts[k]; ok {
			return nil, &CLIError{255, fmt.Sprintf("rehearsal stand-in: aws sns publish --%s is not emulated", k)}
		}
	}
	msg, err := ca.one("message", true)
	if err != nil {
		return nil, err
	}
	topic, err := ca.one("topic-arn", false)
	if err != nil {
		return nil, err
	}
	subject, err := ca.one("subject", false)
	if err != nil {
		return nil, err
	}
	_, hasSubject := ca.opts["subject"]
	switch {
	case topic == "":
		return nil, serviceError(op, "InvalidParameter", "Invalid parameter: TopicArn or TargetArn Reason: no value for required parameter")
	case !strings.HasPrefix(topic, "arn:aws:sns:") || strings.Count(topic, ":") != 5:
		return nil, serviceError(op, "InvalidParameter", "Invalid parameter: TopicArn")
	case !slices.Contains(e.Cfg.Topics, topic):
		return nil, serviceError(op, "NotFound", "Topic does not exist")
	case hasSubject && !validSubject(subject):
		return nil, serviceError(op, "InvalidParameter", "Invalid parameter: Subject")
	case msg == "":
		return nil, serviceError(op, "InvalidParameter", "Invalid parameter: Empty message")
	case len(msg) > 262144:
		return nil, serviceError(op, "InvalidParameter", "Invalid parameter: Message too long")
	case !utf8.ValidString(msg):
		return nil, serviceError(op, "InvalidParameter", "Invalid parameter: Message Reason: the message is not valid UTF-8")
	}
	if e.Cfg.countCall("sns publish", args) {
		return nil, serviceError(op, "Throttling", "Rate exceeded (injected by the rehearsal)")
	}
	m := SNSMessage{Time: e.Now().UTC(), TopicArn: topic, Subject: subject, Message: msg, MessageID: NewUUID()}
	if err := e.Cfg.appendJSONLine(snsMessagesFile, m); err != nil {
		return nil, err
	}
	return map[string]any{"MessageId": m.MessageID}, nil
}
