#!/usr/bin/env python3
"""Plays a minimal OpenFlow 1.3 switch on 127.0.0.1 and records what an ovs-ofctl command sends.

Usage: capture.py NAME -- ovs-ofctl -O OpenFlow13 add-flow tcp:127.0.0.1:{port} 'FLOW'
Writes NAME.golden: '#' lines with the command, then one hex line per message ovs-ofctl sent
(hello, features, echo and barrier requests left out; xids zeroed). Answers hello, echo, features,
barrier, bundle control (with the matching reply) and table features (one bare table)."""
import socket, struct, subprocess, sys, threading

def recv_exact(c, n):
    b = b''
    while len(b) < n:
        d = c.recv(n - len(b))
        if not d:
            raise EOFError
        b += d
    return b

def main():
    name, cmd = sys.argv[1], sys.argv[3:]
    s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(1)
    port = s.getsockname()[1]
    cmd = [a.replace('{port}', str(port)) for a in cmd]
    p = subprocess.Popen(cmd)
    s.settimeout(10); c, _ = s.accept(); c.settimeout(10)
    c.sendall(struct.pack('!BBHIHHI', 4, 0, 16, 0, 1, 8, 0x10))
    got = []
    try:
        while True:
            h = recv_exact(c, 8)
            v, t, l, x = struct.unpack('!BBHI', h)
            body = recv_exact(c, l - 8)
            if t == 0:
                continue
            if t == 2:
                c.sendall(struct.pack('!BBHI', 4, 3, l, x) + body); continue
            if t == 5:
                c.sendall(struct.pack('!BBHIQIBBxxII', 4, 6, 32, x, 1, 0, 254, 0, 0, 0)); continue
            if t == 20:
                c.sendall(struct.pack('!BBHI', 4, 21, 8, x)); continue
            if t == 18:
                # Table features (ovs-ofctl asks for table names): one table 0 without properties.
                feat = struct.pack('!HB5x32sQQII', 64, 0, b'', 0, 0, 0, 1000000)
                c.sendall(struct.pack('!BBHIHHxxxx', 4, 19, 16 + len(feat), x, 12, 0) + feat)
                continue
            if t == 4 and struct.unpack('!II', body[:8]) == (0x4f4e4600, 2300):
                bid, bt, fl = struct.unpack('!IHH', body[8:16])
                c.sendall(struct.pack('!BBHIIIIHH', 4, 4, 24, x, 0x4f4e4600, 2300, bid, bt + 1, fl))
            got.append(bytes(h[:4]) + b'\0\0\0\0' + body)
    except (EOFError, socket.timeout, ConnectionResetError):
        pass
    rc = p.wait(10)
    with open(name + '.golden', 'w') as f:
        f.write('# ' + ' '.join(sys.argv[3:]) + '\n# exit status %d\n' % rc)
        for m in got:
            f.write(m.hex() + '\n')

main()
