package scheduler

import (
	"strings"
	"testing"
	"time"
)

func TestNewEventNamesItsCapability(t *testing.T) {
	obj := capabilityDoc()
	obj.SetUID("uid-1")
	obj.SetResourceVersion("7")
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	long := strings.Repeat("x", 2000)
	ev := newEvent(obj, "Warning", EventFailedScheduling, long, now)
	if ev.Namespace != obj.GetNamespace() || !strings.HasPrefix(ev.Name, obj.GetName()+".") {
		t.Errorf("event %s/%s, want one in %s named after %s", ev.Namespace, ev.Name, obj.GetNamespace(), obj.GetName())
	}
	ref := ev.InvolvedObject
	if ref.Kind != obj.GetKind() || ref.APIVersion != obj.GetAPIVersion() || ref.Name != obj.GetName() || ref.UID != "uid-1" || ref.ResourceVersion != "7" {
		t.Errorf("involvedObject = %+v", ref)
	}
	if len(ev.Message) != maxEventMessage || !strings.HasSuffix(ev.Message, "...") {
		t.Errorf("a 2000-character message kept %d characters", len(ev.Message))
	}
	if ev.Type != "Warning" || ev.Reason != EventFailedScheduling || ev.Count != 1 || !ev.FirstTimestamp.Equal(&ev.LastTimestamp) || ev.Source.Component != ControllerName {
		t.Errorf("event = %+v", ev)
	}
	other := newEvent(obj, "Warning", EventFailedScheduling, "m", now.Add(time.Nanosecond))
	if other.Name == ev.Name {
		t.Error("two events of one capability share a name")
	}
}
