// Package suggest finds what a user probably meant: the nearest known key,
// tag or name to one that does not exist, for the "did you mean" of an
// error message.
package suggest

// Distance is the Levenshtein distance of a and b, in bytes: insertions,
// deletions and substitutions.
func Distance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
