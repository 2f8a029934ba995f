// Command golden prints what Go's text/template, with Sprig and the upstream injector's own
// functions, makes of every template in the differential corpus: the expected outputs that
// bulwark-agent's template engine is checked against (tests/it/templates.rs).
//
// It renders each template as the upstream injector does: a template named "secret", the
// functions of sprig.TxtFuncMap() plus base64enc, base64dec, sha256sum and sha512sum, and the
// data decoded by encoding/json into map[string]interface{} (numbers are float64), as the KSM
// Go SDK decodes record fields.
//
// Run it with Debian's golang-go and golang-github-masterminds-sprig-dev (Sprig 3.2.3), in GOPATH
// mode, or through `cargo xtask templates`, which does:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go run golden.go corpus.json > expected.json
package main

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"text/template"

	"github.com/Masterminds/sprig"
)

type corpus struct {
	Data  map[string]interface{} `json:"data"`
	Cases []struct {
		Name     string `json:"name"`
		Template string `json:"template"`
		Data     string `json:"data"`
	} `json:"cases"`
}

// result is one template's outcome: its output, or that Go refused it (at parse or execution)
// and why.
type result struct {
	Output *string `json:"output,omitempty"`
	Error  *string `json:"error,omitempty"`
}

type expected struct {
	Go      string            `json:"go"`
	Sprig   string            `json:"sprig"`
	Results map[string]result `json:"results"`
}

// funcs are the upstream injector's: Sprig's, then its own four on top.
func funcs() template.FuncMap {
	m := sprig.TxtFuncMap()
	m["base64enc"] = func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	m["base64dec"] = func(s string) (string, error) {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return "", fmt.Errorf("base64 decode failed: %w", err)
		}
		return string(b), nil
	}
	m["sha256sum"] = func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	m["sha512sum"] = func(s string) string { h := sha512.Sum512([]byte(s)); return hex.EncodeToString(h[:]) }
	return m
}

func render(text string, data interface{}) (out string, err error) {
	tmpl, err := template.New("secret").Funcs(funcs()).Parse(text)
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, data); err != nil {
		return "", err
	}
	return buf.String(), nil
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: golden corpus.json > expected.json")
		os.Exit(64)
	}
	raw, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var c corpus
	if err := json.Unmarshal(raw, &c); err != nil {
		fmt.Fprintln(os.Stderr, "corpus:", err)
		os.Exit(1)
	}
	out := expected{Go: runtime.Version(), Sprig: "3.2.3", Results: map[string]result{}}
	for _, tc := range c.Cases {
		if _, dup := out.Results[tc.Name]; dup {
			fmt.Fprintln(os.Stderr, "corpus: duplicate case", tc.Name)
			os.Exit(1)
		}
		set := tc.Data
		if set == "" {
			set = "record"
		}
		data, ok := c.Data[set]
		if !ok {
			fmt.Fprintf(os.Stderr, "corpus: case %s names data %q, which is not defined\n", tc.Name, set)
			os.Exit(1)
		}
		text, err := render(tc.Template, data)
		if err != nil {
			msg := err.Error()
			out.Results[tc.Name] = result{Error: &msg}
		} else {
			out.Results[tc.Name] = result{Output: &text}
		}
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
