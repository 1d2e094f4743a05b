//go:build guest

package guest_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"time"
)

// agentClient speaks the QEMU guest agent protocol (QMP-style JSON over the
// virtio-serial port org.qemu.guest_agent.0) through the host end of the
// channel, a unix socket qemu listens on: what virt-launcher does to fill a
// VMI's status.interfaces (infoSource guest-agent) and guestOSInfo. Each call
// opens the socket, synchronises with guest-sync (the agent may hold a stale
// reply from an earlier client) and runs one command.
type agentClient struct {
	path string
}

// agentInterface is one entry of guest-network-get-interfaces.
type agentInterface struct {
	Name        string `json:"name"`
	MAC         string `json:"hardware-address"`
	IPAddresses []struct {
		Type    string `json:"ip-address-type"`
		Address string `json:"ip-address"`
		Prefix  int    `json:"prefix"`
	} `json:"ip-addresses"`
}

// call runs command with arguments (nil for none) and decodes its return
// value into out.
func (a *agentClient) call(command string, arguments any, out any) error {
	conn, err := net.DialTimeout("unix", a.path, 5*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(20 * time.Second)); err != nil {
		return err
	}
	enc, dec := json.NewEncoder(conn), json.NewDecoder(conn)
	id := rand.Int64N(1 << 40)
	if err := enc.Encode(map[string]any{"execute": "guest-sync", "arguments": map[string]any{"id": id}}); err != nil {
		return err
	}
	for {
		var r struct {
			Return *int64 `json:"return"`
		}
		if err := dec.Decode(&r); err != nil {
			return fmt.Errorf("guest-sync: %w", err)
		}
		if r.Return != nil && *r.Return == id {
			break
		}
	}
	req := map[string]any{"execute": command}
	if arguments != nil {
		req["arguments"] = arguments
	}
	if err := enc.Encode(req); err != nil {
		return err
	}
	var r struct {
		Return json.RawMessage `json:"return"`
		Error  *struct {
			Class string `json:"class"`
			Desc  string `json:"desc"`
		} `json:"error"`
	}
	if err := dec.Decode(&r); err != nil {
		return fmt.Errorf("%s: %w", command, err)
	}
	if r.Error != nil {
		return fmt.Errorf("%s: %s: %s", command, r.Error.Class, r.Error.Desc)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(r.Return, out)
}
