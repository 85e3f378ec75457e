# Sourced by scripts/test: make sure the real services the tests talk to are there, and say so.
# Mosquitto on 127.0.0.1:1883 and PostgreSQL on 127.0.0.1:5432 are started when installed but
# not running; Debian's victoria-metrics (the InfluxDB-mirror tests) and chromium (the page
# tests, driven by Playwright; never `playwright install`) are installed when missing.
# Nothing here is fatal: a missing service makes its tests fail with a clear message.

say() { echo "[waldstadt] $*" >&2; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

apt_install() {  # apt_install PACKAGE...: quietly, updating the lists once if needed
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo -n"
    $sudo apt-get install -y -qq "$@" >/dev/null 2>&1 \
        || { $sudo apt-get update -qq >/dev/null 2>&1 && $sudo apt-get install -y -qq "$@" >/dev/null 2>&1; }
}

if port_open 1883; then
    say "mosquitto: running on 127.0.0.1:1883"
else
    command -v mosquitto >/dev/null 2>&1 || { say "installing mosquitto"; apt_install mosquitto; }
    if command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ]; then
        say "starting mosquitto"
        "$(command -v mosquitto || echo /usr/sbin/mosquitto)" -d -c /etc/mosquitto/mosquitto.conf \
            || say "mosquitto could not be started; the broker tests fall back to amqtt"
    fi
fi

if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    say "postgresql: running on 127.0.0.1:5432"
else
    if ! ls /etc/postgresql >/dev/null 2>&1; then say "installing postgresql"; apt_install postgresql; fi
    say "starting postgresql"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start 2>/dev/null \
        || say "postgresql could not be started; the PostgreSQL tests will fail"
    for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null && break; sleep 1; done
fi

if ! command -v victoria-metrics >/dev/null 2>&1; then
    say "installing victoria-metrics (the InfluxDB-mirror tests)"
    apt_install victoria-metrics || say "victoria-metrics could not be installed; the mirror tests will fail"
fi

if ! [ -x /usr/bin/chromium ]; then
    say "installing chromium (the page tests; a minute or two)"
    apt_install chromium || say "chromium could not be installed; the browser tests will be skipped"
fi
