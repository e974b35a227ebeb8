package fdisk

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	text := `# comment
disk vda 1G   # the lab's disk
part swap 128M
part linux rest

disk * 
part linux 50%
part swap 25%
`
	f, err := Parse("fdisk", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	want := []Disk{
		{Name: "vda", Size: 1 << 30, Line: 2, Parts: []Part{{Swap, Size{Bytes: 128 << 20}, 3}, {Linux, Size{Rest: true}, 4}}},
		{Name: "*", Line: 6, Parts: []Part{{Linux, Size{Percent: 50}, 7}, {Swap, Size{Percent: 25}, 8}}},
	}
	if !reflect.DeepEqual(f.Disks, want) {
		t.Errorf("Parse = %+v\nwant %+v", f.Disks, want)
	}
	if d, ok := f.Match("vda", 1<<30); !ok || d.Line != 2 {
		t.Errorf("Match(vda, 1G) = %+v %v, want line 2", d, ok)
	}
	if d, ok := f.Match("vda", 2<<30); !ok || d.Line != 6 {
		t.Errorf("Match(vda, 2G) = %+v %v, want line 6 (*)", d, ok)
	}
	back, err := Parse("again", f.Format())
	if err != nil {
		t.Fatalf("Format does not parse back: %v\n%s", err, f.Format())
	}
	if len(back.Disks) != 2 || back.Disks[0].Text() != f.Disks[0].Text() || back.Disks[1].Text() != f.Disks[1].Text() {
		t.Errorf("Format round trip:\n%s", f.Format())
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"part linux 1G\n", "f:1: part before any disk line"},
		{"disk vda\npart ext4 1G\n", "f:2: part: bad type \"ext4\""},
		{"disk vda\npart linux 1Q\n", "f:2: part: bad size \"1Q\""},
		{"disk vda\npart linux rest\npart swap 1G\n", "f:2: part: rest must be the disk's last partition"},
		{"disk vda\npart linux 60%\npart swap 50%\n", "f:1: disk vda: partitions add up to 110%"},
		{"disk vda\n\n", "f:1: disk vda has no part lines"},
		{"disk vda\npart linux rest\ndisk vda 1G\npart swap rest\n", "f:3: disk vda: never used, line 1 already matches"},
		{"fstab /dev/vda\n", "f:1: unknown directive \"fstab\""},
		{"disk ../x\npart linux rest\n", "f:1: disk: bad disk name"},
		{"disk vda 0\npart linux rest\n", "f:1: disk vda: bad size \"0\""},
		{"disk vda\npart linux 101%\n", "f:2: part: bad percentage"},
		{"disk vda\x01\n", "f:1: control character"},
		{"disk vda 99999999999T\npart linux rest\n", "bad size"},
	} {
		f, err := Parse("f", []byte(tc.text))
		var pe *ParseError
		if !errors.As(err, &pe) || f != nil {
			t.Errorf("Parse(%q) = %v, %v; want a *ParseError", tc.text, f, err)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) error %q, want it to contain %q", tc.text, err, tc.want)
		}
	}
}

func TestPlan(t *testing.T) {
	d := Disk{Name: "vda", Parts: []Part{{Type: Swap, Size: Size{Bytes: 128 << 20}}, {Type: Linux, Size: Size{Rest: true}}}}
	ext, err := d.Plan(1<<30, 512)
	if err != nil {
		t.Fatal(err)
	}
	want := []Extent{
		{1, Swap, 2048, 2048 + 128*2048 - 1, 512},
		{2, Linux, 2048 + 128*2048, (1<<30)/512 - 33 - 1, 512},
	}
	if !reflect.DeepEqual(ext, want) {
		t.Errorf("Plan = %v, want %v", ext, want)
	}
	// A size that is not a whole MiB leaves the next partition aligned.
	d2 := Disk{Name: "vda", Parts: []Part{{Type: Linux, Size: Size{Bytes: 1000}}, {Type: Linux, Size: Size{Bytes: 1 << 20}}}}
	ext, err = d2.Plan(64<<20, 512)
	if err != nil {
		t.Fatal(err)
	}
	if ext[0].End != 2048+1 || ext[1].Start != 4096 {
		t.Errorf("Plan = %v: want partition 1 two sectors, partition 2 at 2 MiB", ext)
	}
	// 4K sectors: the same layout in sectors of 4096 bytes.
	ext, err = d.Plan(1<<30, 4096)
	if err != nil {
		t.Fatal(err)
	}
	if ext[0].Start != 256 || ext[0].Bytes() != 128<<20 || ext[1].End != (1<<30)/4096-5-1 {
		t.Errorf("Plan with 4K sectors = %v", ext)
	}
}

func TestPlanRefusesWhatDoesNotFit(t *testing.T) {
	for _, tc := range []struct {
		parts []Part
		size  int64
	}{
		{[]Part{{Type: Linux, Size: Size{Bytes: 1 << 30}}}, 1 << 30},                                               // no room for the GPT
		{[]Part{{Type: Swap, Size: Size{Bytes: 600 << 20}}, {Type: Linux, Size: Size{Bytes: 500 << 20}}}, 1 << 30}, // too much
		{[]Part{{Type: Swap, Size: Size{Bytes: 1022 << 20}}, {Type: Linux, Size: Size{Rest: true}}}, 1 << 30},      // rest < 1M
		{[]Part{{Type: Linux, Size: Size{Percent: 1}}}, 50 << 20},                                                  // 1% < 1M
		{[]Part{{Type: Linux, Size: Size{Percent: 100}}}, 1 << 30},                                                 // 100% + the GPT
	} {
		d := Disk{Name: "vda", Parts: tc.parts}
		if ext, err := d.Plan(tc.size, 512); !errors.Is(err, ErrNoFit) {
			t.Errorf("Plan(%v on %s) = %v, %v; want ErrNoFit", tc.parts, FormatBytes(tc.size), ext, err)
		}
	}
}

func image(t *testing.T, size int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "disk.img")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return p
}

func TestApplyWritesGPT(t *testing.T) {
	img := image(t, 256<<20)
	d := Disk{Name: "vda", Parts: []Part{{Type: Swap, Size: Size{Bytes: 32 << 20}}, {Type: Linux, Size: Size{Rest: true}}}}
	ext, err := Apply(img, d)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Read(img)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, ext) {
		t.Errorf("read back %v, wrote %v", got, ext)
	}
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	if string(b[512:520]) != "EFI PART" || b[510] != 0x55 || b[511] != 0xaa {
		t.Errorf("no GPT header at LBA 1 or no protective MBR signature")
	}
	if string(b[len(b)-512:len(b)-504]) != "EFI PART" {
		t.Errorf("no backup GPT header in the last sector")
	}
}

func TestApplyRefusesBeforeWriting(t *testing.T) {
	img := image(t, 64<<20)
	marker := []byte("data that must survive")
	f, _ := os.OpenFile(img, os.O_RDWR, 0)
	f.WriteAt(marker, 0)
	f.WriteAt(marker, 512)
	f.Close()
	d := Disk{Name: "vda", Parts: []Part{{Type: Swap, Size: Size{Bytes: 1 << 30}}}}
	if _, err := Apply(img, d); !errors.Is(err, ErrNoFit) {
		t.Fatalf("Apply of a 1G swap to a 64M disk = %v, want ErrNoFit", err)
	}
	b, _ := os.ReadFile(img)
	if string(b[:len(marker)]) != string(marker) || string(b[512:512+len(marker)]) != string(marker) {
		t.Errorf("a refused layout changed the disk")
	}
}

func TestDefault(t *testing.T) {
	f := Default([]Info{{"vda", 1 << 30}, {"vda", 1 << 30}, {"sda", 100 << 20}, {"vdb", 64 << 30}, {"tiny", 1 << 20}})
	got := string(f.Format())
	for _, want := range []string{"disk vda 1G\npart swap 128M\npart linux rest\n", "disk sda 100M\npart linux rest\n", "disk vdb 64G\npart swap 2G\npart linux rest\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("Default is missing %q:\n%s", want, got)
		}
	}
	if strings.Count(got, "disk vda") != 1 || strings.Contains(got, "tiny") {
		t.Errorf("Default repeats a disk or keeps a tiny one:\n%s", got)
	}
	if _, err := Parse("default", f.Format()); err != nil {
		t.Errorf("Default does not parse: %v", err)
	}
	for _, d := range f.Disks {
		if _, err := d.Plan(d.Size, 512); err != nil {
			t.Errorf("Default's %s does not fit its own disk: %v", d.Name, err)
		}
	}
}

func TestList(t *testing.T) {
	root := t.TempDir()
	for name, size := range map[string]string{"vda": "2097152\n", "loop0": "100\n", "ram0": "8192\n", "sr0": "0\n", "nvme0n1": "100\n", "sdb": "0\n"} {
		os.MkdirAll(filepath.Join(root, name), 0o755)
		os.WriteFile(filepath.Join(root, name, "size"), []byte(size), 0o644)
	}
	got, err := List(root)
	if err != nil {
		t.Fatal(err)
	}
	want := []Info{{"nvme0n1", 51200}, {"vda", 1 << 30}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("List = %v, want %v", got, want)
	}
}

func TestPartName(t *testing.T) {
	for disk, want := range map[string]string{"vda": "vda2", "nvme0n1": "nvme0n1p2", "mmcblk0": "mmcblk0p2"} {
		if got := PartName(disk, 2); got != want {
			t.Errorf("PartName(%s, 2) = %s, want %s", disk, got, want)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("disk vda 1G\npart swap 128M\npart linux rest\n"))
	f.Add([]byte("disk *\npart linux 50%\npart swap 25%\n# c\n"))
	f.Add([]byte("part linux 1G\ndisk vda\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		file, err := Parse("fuzz", b)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || len(pe.Diags) == 0 || file != nil {
				t.Fatalf("error %v is not a non-empty *ParseError", err)
			}
			return
		}
		again, err := Parse("again", file.Format())
		if err != nil {
			t.Fatalf("Format of a parsed file does not parse: %v\n%s", err, file.Format())
		}
		if string(again.Format()) != string(file.Format()) {
			t.Fatalf("Format is not stable:\n%s\nvs\n%s", file.Format(), again.Format())
		}
		for _, d := range file.Disks {
			d.Plan(1<<30, 512) // must not panic
		}
	})
}

func TestHuman(t *testing.T) {
	for n, want := range map[int64]string{512: "512", 1 << 20: "1M", 233815552: "223.0M", 3 << 30: "3G", 1536 << 20: "1536M", 1000: "1000", 5000: "4.9K"} {
		if got := Human(n); got != want {
			t.Errorf("Human(%d) = %s, want %s", n, got, want)
		}
	}
}
