package pid1

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// powerCmd maps a power action, as bpctl names it, to reboot(2)'s command.
func powerCmd(action string) (int, bool) {
	switch action {
	case "reboot":
		return unix.LINUX_REBOOT_CMD_RESTART, true
	case "halt":
		return unix.LINUX_REBOOT_CMD_HALT, true
	case "pwroff":
		return unix.LINUX_REBOOT_CMD_POWER_OFF, true
	}
	return 0, false
}

// Power syncs the file systems and reboots ("reboot"), halts ("halt") or
// powers off ("pwroff") the machine at once: a diskless node keeps
// nothing worth a slower shutdown. It returns only on error.
func Power(action string) error {
	cmd, ok := powerCmd(action)
	if !ok {
		return fmt.Errorf("unknown power action %q", action)
	}
	unix.Sync()
	if err := unix.Reboot(cmd); err != nil {
		return fmt.Errorf("%s: %w", action, err)
	}
	return nil
}
