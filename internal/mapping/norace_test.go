//go:build !race

package mapping

// raceEnabled tells tests that timings are those of the race detector.
const raceEnabled = false
