package records

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
)

// S3 is the part of the S3 API the records need (*s3.Client has it).
type S3 interface {
	GetObject(ctx context.Context, in *s3.GetObjectInput, opts ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	PutObject(ctx context.Context, in *s3.PutObjectInput, opts ...func(*s3.Options)) (*s3.PutObjectOutput, error)
}

// Store reads and writes the records of one bucket.
type Store struct {
	S3     S3
	Bucket string
}

// URL names a record for a message.
func (s Store) URL(key string) string { return "s3://" + s.Bucket + "/" + key }

// Get reads the object at key. found is false only when S3 says the key
// does not exist (NoSuchKey, 404); anything else, AccessDenied included, is
// an error: without s3:ListBucket a missing key reads as 403, and a stage
// that took "cannot read" for "absent" would fail open (a hold not seen).
func (s Store) Get(ctx context.Context, key string) (body []byte, found bool, err error) {
	out, err := s.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(key)})
	if err != nil {
		var ae smithy.APIError
		if errors.As(err, &ae) && (ae.ErrorCode() == "NoSuchKey" || ae.ErrorCode() == "NotFound") {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("reading %s: %w", s.URL(key), err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		return nil, false, fmt.Errorf("reading %s: %w", s.URL(key), err)
	}
	return b, true, nil
}

// GetJSON reads one JSON record into v. An empty object is an error, not
// an absent record: a record is written whole or not at all.
func (s Store) GetJSON(ctx context.Context, key string, v any) (found bool, err error) {
	b, found, err := s.Get(ctx, key)
	if err != nil || !found {
		return found, err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return true, fmt.Errorf("%s is not the JSON record expected: %v", s.URL(key), err)
	}
	return true, nil
}

// Put writes one object.
func (s Store) Put(ctx context.Context, key, contentType string, body []byte) error {
	_, err := s.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(key), Body: bytes.NewReader(body), ContentType: aws.String(contentType)})
	if err != nil {
		return fmt.Errorf("writing %s: %w", s.URL(key), err)
	}
	return nil
}

// PutJSON writes one JSON record, indented, with a final newline.
func (s Store) PutJSON(ctx context.Context, key string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return s.Put(ctx, key, "application/json", append(b, '\n'))
}
