package workflow

import "testing"

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
	}
	for in, want := range ok {
		got, err := GitHubCron(in)
		if err != nil || got != want {
			t.Errorf("GitHubCron(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	bad := []string{
		"rate(1 day)",
		"0 4 * * *",
		"cron(0 4 * * *)",       // 5 fields
		"cron(0 4 * * ? 2027)",  // a year
		"cron(0 4 L * ? *)",     // last day of month
		"cron(0 4 ? * 6L *)",    // last Friday
		"cron(0 4 ? * MON#1 *)", // first Monday
		"cron(0 4 15W * ? *)",   // nearest weekday
		"cron(0 4 * * * *)",     // neither day field is ?
		"cron(0 4 ? * ? *)",     // both are
		"cron(60 4 * * ? *)",    // minute out of range
		"cron(0 24 * * ? *)",    // hour out of range
		"cron(0 4 ? * 0 *)",     // EventBridge day-of-week starts at 1
		"cron(0/0 4 * * ? *)",   // step 0
		"cron(x 4 * * ? *)",
	}
	for _, in := range bad {
		if got, err := GitHubCron(in); err == nil {
			t.Errorf("GitHubCron(%q) = %q, want an error", in, got)
		}
	}
}
