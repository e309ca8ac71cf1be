package conformance

import (
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"strings"
	"text/tabwriter"
)

// Table renders the report as a table: one line per step with its result and, for a
// failure, the reason.
func (r Report) Table() string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "PHASE\tCHECK\tRESULT\tTOOK\n")
	for _, s := range r.Steps {
		result := "pass"
		switch {
		case s.Err != nil:
			result = "FAIL: " + s.Err.Error()
		case s.Skipped != "":
			result = "skipped: " + s.Skipped
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", s.Phase, s.Name, result, s.Took.Round(100_000_000))
	}
	_ = w.Flush()
	verdict := "PASS"
	if !r.Passed() {
		verdict = "FAIL"
	}
	fmt.Fprintf(&b, "\n%s: provider %s\n", verdict, r.Provider)
	return b.String()
}

type junitSuite struct {
	XMLName  xml.Name    `xml:"testsuite"`
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      float64       `xml:"time,attr"`
	Failure   *junitMessage `xml:"failure,omitempty"`
	Skipped   *junitMessage `xml:"skipped,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
}

// JUnit renders the report as JUnit XML, one test case per step.
func (r Report) JUnit() []byte {
	s := junitSuite{Name: "msp-conformance " + r.Provider, Tests: len(r.Steps)}
	for _, st := range r.Steps {
		c := junitCase{Name: st.Name, Classname: st.Phase, Time: st.Took.Seconds()}
		if st.Err != nil {
			c.Failure = &junitMessage{Message: st.Err.Error()}
			s.Failures++
		}
		if st.Skipped != "" {
			c.Skipped = &junitMessage{Message: st.Skipped}
			s.Skipped++
		}
		s.Cases = append(s.Cases, c)
	}
	out, err := xml.MarshalIndent(s, "", "  ")
	if err != nil {
		panic(err) // plain structs always marshal
	}
	return append([]byte(xml.Header), out...)
}

func decode(data map[string]string) map[string][]byte {
	out := map[string][]byte{}
	for k, v := range data {
		raw, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			raw = []byte(v)
		}
		out[k] = raw
	}
	return out
}
