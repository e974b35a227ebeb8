package slave

import (
	"io"
	"net"
	"time"

	"github.com/beo-cluster/beo/pkg/wire"
)

// powerAckWait bounds how long the slave waits for the master to close a
// control stream, the sign that it has read the Result, before acting.
const powerAckWait = 2 * time.Second

// control carries out a power action: Result{} first, then — once the
// master has closed the stream or powerAckWait passed — Config.Power. A
// node that rebooted before its answer left would look to the master like
// a failure. Node state, mode and ownership are the master's business; a
// request with no power action is refused.
func (ss *session) control(st net.Conn, c *wire.Control) {
	log := ss.log.With("node", ss.node, "op", "control", "power", c.Power)
	switch c.Power {
	case "reboot", "halt", "pwroff":
	default:
		log.Warn("refused control request")
		ss.refuse(st, wire.Errorf(wire.CodeInvalid, "unsupported power action %q", c.Power))
		return
	}
	if ss.cfg.Power == nil {
		ss.refuse(st, wire.Errorf(wire.CodeInvalid, "%s: power control not available", c.Power))
		return
	}
	st.SetWriteDeadline(time.Now().Add(powerAckWait))
	if err := wire.Write(st, wire.Result{}); err != nil {
		log.Warn("control: result not delivered; not acting", "err", err)
		st.Close()
		return
	}
	st.Close()
	st.SetReadDeadline(time.Now().Add(powerAckWait))
	io.Copy(io.Discard, st)
	log.Info("power action")
	if err := ss.cfg.Power(c.Power); err != nil {
		log.Error("power action failed", "err", err)
	}
}
