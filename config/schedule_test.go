package config

import (
	"strings"
	"testing"
	"time"
)

func TestParseScheduleValid(t *testing.T) {
	for _, e := range []string{
		"cron(0 4 * * ? *)",
		"cron(15 10 ? * MON-FRI *)",
		"cron(0/15 * * * ? *)",
		"cron(0 8 1 JAN,JUL ? 2027-2030)",
		"cron(0 4 L * ? *)",
		"cron(0 4 15W * ? *)",
		"cron(0 4 ? * 6L *)",
		"cron(0 4 ? * 2#1 *)",
		"cron(0 4 ? * L *)",
		"cron(0 4 ? * sun *)",
		"rate(1 minute)", "rate(5 minutes)", "rate(1 hour)", "rate(1 day)", "rate(3 days)",
	} {
		if _, err := ParseSchedule(e); err != nil {
			t.Errorf("ParseSchedule(%q): %v", e, err)
		}
	}
}

func TestParseScheduleInvalid(t *testing.T) {
	cases := map[string]string{
		"0 4 * * *":                 "not an EventBridge schedule expression",
		"cron(0 4 * * *)":           "has 5 fields",
		"cron(0 4 * * ? * *)":       "has 7 fields",
		"cron(60 4 * * ? *)":        `minutes field "60"`,
		"cron(0 24 * * ? *)":        `hours field "24"`,
		"cron(0 4 0 * ? *)":         `day-of-month field "0"`,
		"cron(0 4 * 13 ? *)":        `month field "13"`,
		"cron(0 4 * FOO ? *)":       `month field "FOO"`,
		"cron(0 4 ? * 0 *)":         `day-of-week field "0"`, // EventBridge counts 1-7
		"cron(0 4 ? * 8 *)":         `day-of-week field "8"`,
		"cron(0 4 * * ? 1969)":      `year field "1969"`,
		"cron(0 4 * * * *)":         "exactly one of day-of-month",
		"cron(0 4 ? * ? *)":         "exactly one of day-of-month",
		"cron(0 4 ? * 2#1,3#2 *)":   "# allows no list",
		"cron(0 4 ? * 2#6 *)":       "1 to 5",
		"cron(0/0 4 * * ? *)":       "increment",
		"cron(0 ? * * * *)":         `hours field "?"`,
		"cron(0 4 * * L *)":         "exactly one of day-of-month",
		"cron(0 4 * * ? *":          "not an EventBridge schedule expression",
		"rate(0 days)":              "positive whole number",
		"rate(1.5 hours)":           "positive whole number",
		"rate(1 days)":              "singular",
		"rate(12 hour)":             "plural",
		"rate(1 week)":              "minute(s), hour(s) or day(s)",
		"rate(day)":                 "two parts",
		"cron(0 4 10-5 * ? *)":      "backwards",
		"cron(0 4 #1 * ? *)":        `"#" is not allowed here`,
		"cron(0 4 * JAN-DEC/W ? *)": `month field`,
	}
	for e, want := range cases {
		_, err := ParseSchedule(e)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseSchedule(%q) = %v; want an error containing %q", e, err, want)
		}
	}
}

func TestMaxGap(t *testing.T) {
	cases := map[string]time.Duration{
		"cron(0 4 * * ? *)":         24 * time.Hour,
		"cron(0 4,16 * * ? *)":      12 * time.Hour,
		"cron(0 4 ? * MON-FRI *)":   72 * time.Hour, // Friday to Monday
		"cron(0 4 ? * 2 *)":         7 * 24 * time.Hour,
		"cron(0 4 ? * 2#1 *)":       35 * 24 * time.Hour, // first Mondays: 4 or 5 weeks apart
		"cron(0/15 * * * ? *)":      15 * time.Minute,
		"cron(0 4 L * ? *)":         31 * 24 * time.Hour,
		"rate(36 hours)":            36 * time.Hour,
		"cron(0 4 * JAN,JUL ? *)":   154 * 24 * time.Hour, // July 31 to January 1
		"cron(30 23 ? * SAT,SUN *)": 6*24*time.Hour + 0,
	}
	for e, want := range cases {
		s, err := ParseSchedule(e)
		if err != nil {
			t.Fatalf("%s: %v", e, err)
		}
		got, err := s.MaxGap()
		if err != nil || got != want {
			t.Errorf("MaxGap(%s) = %v, %v; want %v", e, got, err, want)
		}
	}
}

func TestGitHubCron(t *testing.T) {
	ok := map[string]string{
		"cron(0 4 * * ? *)":             "0 4 * * *",
		"cron(15 10 ? * MON-FRI *)":     "15 10 * * MON-FRI",
		"cron(0 0 ? * 1 *)":             "0 0 * * 0", // EventBridge 1 = Sunday = cron 0
		"cron(0 0 ? * 2-6 *)":           "0 0 * * 1-5",
		"cron(0 0 ? * 1,7 *)":           "0 0 * * 0,6",
		"cron(0/15 * * * ? *)":          "0-59/15 * * * *",
		"cron(*/10 8-17 1 JAN,JUL ? *)": "*/10 8-17 1 JAN,JUL *",
		" cron(30 2 1 * ? *) ":          "30 2 1 * *",
		"cron(0 4 ? * mon *)":           "0 4 * * MON",
	}
	for in, want := range ok {
		s, err := ParseSchedule(in)
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		got, err := s.GitHubCron()
		if err != nil || got != want {
			t.Errorf("GitHubCron(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"rate(1 day)", "cron(0 4 * * ? 2027)", "cron(0 4 L * ? *)", "cron(0 4 ? * 6L *)", "cron(0 4 ? * MON#1 *)", "cron(0 4 15W * ? *)"} {
		s, err := ParseSchedule(in)
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if got, err := s.GitHubCron(); err == nil {
			t.Errorf("GitHubCron(%q) = %q, want an error", in, got)
		}
	}
}
