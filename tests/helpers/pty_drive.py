#!/usr/bin/env python3
"""Drive a program on a real pseudo-terminal, like a person at a terminal.

    pty_drive.py ROWS COLS -- PROGRAM ARGS...   (script on stdin)

Script lines:
    send TEXT        type TEXT and Enter
    type TEXT        type TEXT without Enter; \t is Tab (for completion),
                     \e is Escape (\e[B: the Down arrow)
    ctrl C           type Ctrl-C (any letter)
    expect REGEX     wait (10 s) until the screen output since the last
                     expect matches REGEX; fail otherwise
    resize R C       change the window size (the kernel sends SIGWINCH)
    sleep SECONDS
    run COMMAND      run COMMAND with /bin/sh outside, as the driver's user
    wait             wait for the program to exit, print "exit=N"
    dump             print the screen output so far (to check what is absent;
                     after `wait`: all of it)
Exit status 0 when every expect matched; the transcript is printed on failure.
"""
import fcntl, os, pty, re, select, signal, struct, subprocess, sys, termios, time

def winsize(fd, rows, cols):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

def main():
    rows, cols = int(sys.argv[1]), int(sys.argv[2])
    argv = sys.argv[sys.argv.index("--") + 1:]
    script = sys.stdin.read().splitlines()
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(argv[0], argv)
    winsize(fd, rows, cols)
    buf, seen, exited = b"", 0, False

    def pump(timeout):
        nonlocal buf
        r, _, _ = select.select([fd], [], [], timeout)
        if r:
            try:
                data = os.read(fd, 65536)
            except OSError:
                return False
            if not data:
                return False
            buf += data
        return True

    def fail(msg):
        sys.stdout.write("FAIL: %s\n--- transcript\n%s\n" % (msg, buf.decode(errors="replace")))
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        sys.exit(1)

    for line in script:
        if not line.strip():
            continue
        cmd, _, arg = line.partition(" ")
        if cmd == "send":
            os.write(fd, arg.encode() + b"\r")
        elif cmd == "type":
            os.write(fd, arg.replace("\\t", "\t").replace("\\e", "\x1b").encode())
        elif cmd == "ctrl":
            os.write(fd, bytes([ord(arg.upper()) - 64]))
        elif cmd == "expect":
            deadline = time.time() + 10
            while True:
                m = re.search(arg.encode(), buf[seen:])
                if m:
                    seen += m.end()
                    break
                if time.time() > deadline:
                    fail("timed out waiting for %r" % arg)
                pump(0.1)
        elif cmd == "dump":
            sys.stdout.write(buf.decode(errors="replace") + "\n")
        elif cmd == "resize":
            r, c = arg.split()
            winsize(fd, int(r), int(c))
        elif cmd == "run":
            if subprocess.call(["/bin/sh", "-c", arg]) != 0:
                fail("command failed: %r" % arg)
        elif cmd == "sleep":
            end = time.time() + float(arg)
            while time.time() < end:
                pump(0.05)
        elif cmd == "wait":
            deadline = time.time() + 10
            while time.time() < deadline and pump(0.1):
                pass
            while True:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    break
                if time.time() > deadline + 5:
                    fail("program did not exit")
                time.sleep(0.05)
            print("exit=%d" % os.waitstatus_to_exitcode(status))
            exited = True
        else:
            fail("bad script line %r" % line)
    if not exited:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)

main()
