package master

import "testing"

func TestJobs(t *testing.T) {
	var j jobs
	if j.has(3, 1000) {
		t.Fatal("empty: has(3, 1000)")
	}
	end1 := j.start(3, 1000)
	end2 := j.start(3, 1000)
	if !j.has(3, 1000) || j.has(3, 1001) || j.has(4, 1000) {
		t.Fatalf("after start: got %v %v %v, want true false false", j.has(3, 1000), j.has(3, 1001), j.has(4, 1000))
	}
	end1()
	end1() // ending twice counts once
	if !j.has(3, 1000) {
		t.Error("one of two jobs ended: has = false, want true")
	}
	end2()
	if j.has(3, 1000) {
		t.Error("all jobs ended: has = true, want false")
	}
}
