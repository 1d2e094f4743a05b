package kubevirt

import "testing"

func BenchmarkBuildVM(b *testing.B) {
	owner, m := testOwner(), cloudInitMachine()
	m.AntiAffinity = true
	b.ReportAllocs()
	for b.Loop() {
		_ = BuildVM(testID, owner, m)
	}
}

// BenchmarkBuildCloudInitSecret is dominated by the 5000 SHA-512 rounds of
// the password hash.
func BenchmarkBuildCloudInitSecret(b *testing.B) {
	owner, m := testOwner(), cloudInitMachine()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := BuildCloudInitSecret(testID, owner, m); err != nil {
			b.Fatal(err)
		}
	}
}
