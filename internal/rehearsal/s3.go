package rehearsal

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// The records bucket's stand-in: `aws s3 cp` between a local directory per
// bucket (StateDir/s3/<bucket>/<key>) and stdin, stdout or a file. Only the
// shapes the commands use are emulated; anything else is refused loudly.
//
// What it keeps of S3: a missing object fails the download the way the AWS
// CLI v2 does (HeadObject 404, exit 1, nothing written); an unknown bucket
// fails an upload with NoSuchBucket (exit 1); an upload replaces the whole
// object at once (the file is renamed into place), so a reader sees the old
// object or the new one, never a part. What it does not keep: versions
// (the bucket is versioned; the commands never read an old version),
// encryption, the lifecycle rule, permissions.

var s3CpOptions = []string{"only-show-errors", "quiet"}

// S3Write is one object the stand-in wrote, in the order written.
type S3Write struct {
	Time   time.Time `json:"time"`
	Bucket string    `json:"bucket"`
	Key    string    `json:"key"`
	SHA256 string    `json:"sha256"`
	Size   int       `json:"size"`
}

const s3WritesFile = "s3-writes.jsonl"

// S3Writes lists every object written so far.
func (c *StandInConfig) S3Writes() ([]S3Write, error) {
	return readJSONLines[S3Write](c, s3WritesFile)
}

func (c *StandInConfig) objectPath(bucket, key string) string {
	return filepath.Join(c.StateDir, "s3", bucket, filepath.FromSlash(key))
}

// GetObject reads an object of a stand-in bucket; ok is false when there is
// none.
func (c *StandInConfig) GetObject(bucket, key string) (data []byte, ok bool, err error) {
	data, err = os.ReadFile(c.objectPath(bucket, key))
	if os.IsNotExist(err) {
		return nil, false, nil
	}
	return data, err == nil, err
}

// PutObject writes an object into a stand-in bucket, whole or not at all.
func (c *StandInConfig) PutObject(bucket, key string, data []byte, now time.Time) error {
	p := c.objectPath(bucket, key)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".upload-")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return err
	}
	sum := sha256.Sum256(data)
	return c.appendJSONLine(s3WritesFile, S3Write{now.UTC(), bucket, key, hex.EncodeToString(sum[:]), len(data)})
}

func (c *StandInConfig) hasBucket(b string) bool { return slices.Contains(c.Buckets, b) }

// parseS3URI splits s3://bucket/key.
func parseS3URI(s string) (bucket, key string, ok bool) {
	rest, ok := strings.CutPrefix(s, "s3://")
	if !ok {
		return "", "", false
	}
	bucket, key, _ = strings.Cut(rest, "/")
	return bucket, key, true
}

// s3Copy is `aws s3 cp SRC DST` for one object.
func (e *ECR) s3Copy(paths []string, ca cliArgs, args []string, stdout io.Writer) error {
	if len(paths) != 2 {
		return usageError("usage: aws s3 cp <LocalPath> <S3Uri> or <S3Uri> <LocalPath> or <S3Uri> <S3Uri>\naws: error: the following arguments are required: paths")
	}
	src, dst := paths[0], paths[1]
	quiet := len(ca.opts["only-show-errors"]) > 0 || len(ca.opts["quiet"]) > 0
	sb, sk, srcS3 := parseS3URI(src)
	db, dk, dstS3 := parseS3URI(dst)
	switch {
	case srcS3 && dstS3:
		return &CLIError{255, "rehearsal stand-in: aws s3 cp from S3 to S3 is not emulated"}
	case !srcS3 && !dstS3:
		return usageError("usage: aws s3 cp <LocalPath> <S3Uri> or <S3Uri> <LocalPath> or <S3Uri> <S3Uri>\nError: Invalid argument type")
	case srcS3 && (sk == "" || strings.HasSuffix(sk, "/")), dstS3 && (dk == "" || strings.HasSuffix(dk, "/")):
		return &CLIError{255, "rehearsal stand-in: aws s3 cp to or from a key prefix (a \"directory\") is not emulated: name the object"}
	}
	if dstS3 {
		var data []byte
		var err error
		if src == "-" {
			data, err = io.ReadAll(e.Stdin)
		} else {
			data, err = os.ReadFile(src)
		}
		if err != nil {
			return &CLIError{255, fmt.Sprintf("\nThe user-provided path %s does not exist.", src)}
		}
		fail := func(code, msg string) error {
			return &CLIError{1, fmt.Sprintf("upload failed: %s to %s An error occurred (%s) when calling the PutObject operation: %s", src, dst, code, msg)}
		}
		if e.Cfg.countCall("s3 cp", args) {
			return fail("SlowDown", "Please reduce your request rate. (injected by the rehearsal)")
		}
		if !e.Cfg.hasBucket(db) {
			return fail("NoSuchBucket", "The specified bucket does not exist")
		}
		if err := e.Cfg.PutObject(db, dk, data, e.Now()); err != nil {
			return err
		}
		if !quiet && src != "-" {
			fmt.Fprintf(stdout, "upload: %s to %s\n", src, dst)
		}
		return nil
	}
	// A download. The CLI asks HeadObject first: a missing object (or
	// bucket) is a 404, and nothing is written.
	if e.Cfg.countCall("s3 cp", args) {
		return &CLIError{1, "fatal error: An error occurred (SlowDown) when calling the HeadObject operation: Please reduce your request rate. (injected by the rehearsal)"}
	}
	data, ok, err := e.Cfg.GetObject(sb, sk)
	if err != nil {
		return err
	}
	if !ok || !e.Cfg.hasBucket(sb) {
		return &CLIError{1, "fatal error: An error occurred (404) when calling the HeadObject operation: Not Found"}
	}
	if dst == "-" {
		_, err := io.Copy(stdout, bytes.NewReader(data))
		return err
	}
	if fi, err := os.Stat(dst); err == nil && fi.IsDir() {
		return &CLIError{255, "rehearsal stand-in: aws s3 cp into a directory is not emulated: name the file"}
	}
	if err := os.WriteFile(dst, data, 0o644); err != nil {
		return &CLIError{1, fmt.Sprintf("download failed: %s to %s %v", src, dst, err)}
	}
	if !quiet {
		fmt.Fprintf(stdout, "download: %s to %s\n", src, dst)
	}
	return nil
}
