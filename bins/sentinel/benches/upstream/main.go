// Upstream Kube Sentinel's per-line algorithm, as research/sentinel.md §1.3-1.5 describes it,
// in Go with Go's regexp as upstream runs it: the baseline of `cargo bench -p sentinel`.
// Written from that description, not copied; regexes are compiled once (upstream compiles
// the extraction ones per line, so this flatters it).
//
// Usage: upstream RULES.json LINES.jsonl RUNS; prints the best run's lines per second and
// a checksum of the rule each line matched.
package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

type rule struct {
	Name     string   `json:"name"`
	Pattern  string   `json:"pattern"`
	Keywords []string `json:"keywords"`
	re       *regexp.Regexp
}

type line struct {
	Namespace string `json:"namespace"`
	Pod       string `json:"pod"`
	Container string `json:"container"`
	Line      string `json:"line"`
}

var (
	fields       []*regexp.Regexp
	afterKeyword = regexp.MustCompile(`(?i)\b(error|fatal|panic|exception|fail(ed|ure)?)\b[:\s]+(.*)`)
	afterHeader  = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}\S*\s+(?:\w+\s+)?(.*)`)
	timestamp    = regexp.MustCompile(`\d{4}-\d{2}-\d{2}[T\s]\d{2}:\d{2}:\d{2}[.\d]*[Z]?`)
	uuid         = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	hexID        = regexp.MustCompile(`[0-9a-f]{24,}`)
	ipv4         = regexp.MustCompile(`\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(:\d+)?`)
	number       = regexp.MustCompile(`\d{6,}`)
	deployment   = regexp.MustCompile(`^(.+)-[a-z0-9]{8,10}-[a-z0-9]{5}$`)
	statefulset  = regexp.MustCompile(`^(.+)-\d+$`)
	job          = regexp.MustCompile(`^(.+)-[a-z0-9]{5}$`)
)

func message(l string) string {
	for _, f := range fields {
		if m := f.FindStringSubmatch(l); m != nil {
			return m[1]
		}
	}
	if m := afterKeyword.FindStringSubmatch(l); m != nil {
		return m[3]
	}
	if m := afterHeader.FindStringSubmatch(l); m != nil {
		return m[1]
	}
	if len(l) > 500 {
		return l[:500]
	}
	return l
}

func podBase(pod string) string {
	for _, re := range []*regexp.Regexp{deployment, statefulset, job} {
		if m := re.FindStringSubmatch(pod); m != nil {
			return m[1]
		}
	}
	return pod
}

func match(rules []rule, msg, raw string) string {
	for _, r := range rules {
		if r.re != nil && !r.re.MatchString(msg) && !r.re.MatchString(raw) {
			continue
		}
		if len(r.Keywords) > 0 {
			hay := strings.ToLower(msg + " " + raw)
			found := false
			for _, k := range r.Keywords {
				if strings.Contains(hay, strings.ToLower(k)) {
					found = true
					break
				}
			}
			if !found {
				continue
			}
		}
		return r.Name
	}
	return "default"
}

func process(rules []rule, l *line) (string, uint64) {
	msg := message(l.Line)
	name := match(rules, msg, l.Line)
	n := timestamp.ReplaceAllString(msg, "")
	n = uuid.ReplaceAllString(n, "<UUID>")
	n = hexID.ReplaceAllString(n, "<ID>")
	n = ipv4.ReplaceAllString(n, "<IP>")
	n = number.ReplaceAllString(n, "<NUM>")
	sum := sha256.Sum256([]byte(l.Namespace + "|" + podBase(l.Pod) + "|" + l.Container + "|" + strings.TrimSpace(n)))
	return name, binary.BigEndian.Uint64(sum[:8])
}

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: upstream RULES.json LINES.jsonl RUNS")
		os.Exit(64)
	}
	for _, f := range []string{"message", "msg", "error", "err"} {
		fields = append(fields, regexp.MustCompile(`"`+f+`"\s*:\s*"([^"]*)"`))
	}
	var rules []rule
	text, err := os.ReadFile(os.Args[1])
	if err == nil {
		err = json.Unmarshal(text, &rules)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "rules:", err)
		os.Exit(1)
	}
	for i := range rules {
		if rules[i].Pattern != "" {
			rules[i].re = regexp.MustCompile(rules[i].Pattern)
		}
	}
	f, err := os.Open(os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, "lines:", err)
		os.Exit(1)
	}
	var lines []line
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			fmt.Fprintln(os.Stderr, "line:", err)
			os.Exit(1)
		}
		lines = append(lines, l)
	}
	runs, _ := strconv.Atoi(os.Args[3])
	best := time.Duration(1 << 62)
	var check uint64
	for r := 0; r < runs; r++ {
		start := time.Now()
		check = 0
		for i := range lines {
			name, fp := process(rules, &lines[i])
			check ^= fp ^ uint64(len(name))
		}
		if d := time.Since(start); d < best {
			best = d
		}
	}
	fmt.Printf("%.0f %d\n", float64(len(lines))/best.Seconds(), check)
}
