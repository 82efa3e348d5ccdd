#!/usr/bin/env bash
# `make run`: starts the daemon on the embedded default with a demo
# organization and app (created once, keys kept in DATA/demo-app.json), loads
# two weeks of generated traffic the first time (`unmogrowp gen`), prints how
# to use it (the dashboard's URL and the demo owner's login among it), and stays in the
# foreground until Ctrl-C. `make run` builds the dashboard (web/dist) first.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-./data}
LISTEN=${LISTEN:-127.0.0.1:8080}
BIN=${UMG_BIN:-build/unmogrowp}
# The data directory and what is written in it are private, as the daemon writes them (the demo's keys are
# in demo-app.json).
umask 077
mkdir -p "$DATA"

if [ ! -s "$DATA/demo-app.json" ]; then
  "$BIN" admin app create --data "$DATA" --org "Demo Studio" --name "Demo Game" --platform android \
    --store-url "https://play.google.com/store/apps/details?id=com.example.demogame" > "$DATA/demo-app.json.tmp"
  mv "$DATA/demo-app.json.tmp" "$DATA/demo-app.json"
fi
if [ ! -s "$DATA/demo-owner.json" ]; then
  # A demo owner with a random password, kept (mode 0600) next to the data.
  PASS=$(python3 -c 'import secrets; print(secrets.token_urlsafe(12))')
  (umask 077; echo "$PASS" | "$BIN" admin user create --data "$DATA" --org "Demo Studio" \
     --email owner@demo.test --role owner > "$DATA/demo-owner.json.tmp" &&
   python3 -c 'import json,sys; o=json.load(open(sys.argv[1])); o["password"]=sys.argv[2]; print(json.dumps(o))' \
     "$DATA/demo-owner.json.tmp" "$PASS" > "$DATA/demo-owner.json" && rm -f "$DATA/demo-owner.json.tmp")
fi
OWNER_PASS=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['password'])" "$DATA/demo-owner.json")
json_field() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$DATA/demo-app.json" "$1"; }
APP_ID=$(json_field app_id); APP_KEY=$(json_field app_key); APP_SECRET=$(json_field app_secret)

# A "data-centre" IP list for the blocked_ip fraud rule: the ranges the demo's fraud traffic comes from.
[ -s "$DATA/demo-datacenter.txt" ] ||
  "$BIN" gen --out /dev/null --devices 1 --quiet --fraud 1 --fraud-ip-list "$DATA/demo-datacenter.txt" >/dev/null
# A daemon already serving DATA holds DATA/daemon.lock: leave it (and its daemon.addr) alone.
if [ -e "$DATA/daemon.lock" ] && ! flock -n "$DATA/daemon.lock" true; then
  echo "make run: a daemon (pid $(cat "$DATA/daemon.lock")) already serves $DATA; stop it first" >&2
  exit 1
fi
rm -f "$DATA/daemon.addr"
# fraud.horizon: the demo's two weeks of history arrive at once, and the fraud rules judge all of it.
"$BIN" serve --data "$DATA" --listen "$LISTEN" --set fraud.horizon=31d \
  --set "fraud.ip_lists=datacenter=$DATA/demo-datacenter.txt" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null' INT TERM EXIT
for _ in $(seq 1 100); do
  [ -s "$DATA/daemon.addr" ] && curl -sf "http://$(cat "$DATA/daemon.addr")/readyz" >/dev/null && break
  kill -0 $pid 2>/dev/null || { echo "the daemon did not start; see the log above" >&2; exit 1; }
  sleep 0.1
done
ADDR=$(cat "$DATA/daemon.addr")

if [ ! -f "$DATA/demo-loaded" ]; then
  # The history's end, kept from the first try: gen's ids come from the seed and this time, so a load
  # interrupted and run again sends the same items (duplicates the daemon answers as such), not a second
  # history beside the first.
  [ -s "$DATA/demo-now" ] || echo $(( $(date +%s) * 1000 )) > "$DATA/demo-now"
  # Two weeks of synthetic traffic: clicks and impressions from many networks, attributed and
  # organic installs, sessions, in-app events and purchases, and 5% fraud for the fraud rules to
  # catch (labels in DATA/demo-fraud-labels.csv; docs/gen.md). The summary goes to DATA/demo-gen.json.
  "$BIN" gen --addr "$ADDR" --app "$APP_ID" --secret "$APP_SECRET" --key "$APP_KEY" --devices 2000 --days 14 \
    --seed 1 --now "$(cat "$DATA/demo-now")" --fraud 5 --fraud-kinds injection,flood,datacenter,bot,farm \
    --fraud-labels "$DATA/demo-fraud-labels.csv" > "$DATA/demo-gen.json"
  # Ad spend for the demo campaigns and daily currency rates, so reports show cost, CPI and ROAS.
  python3 scripts/demo-costs.py "$ADDR" "$APP_ID" "$APP_SECRET" 14 > "$DATA/demo-costs.json" &&
    touch "$DATA/demo-loaded"
fi

cat <<MSG

UnMoGrowP is running on http://$ADDR  (data in $DATA)
Demo organization "Demo Studio", app "Demo Game" ($APP_ID)
  app key    (SDKs):             $APP_KEY
  app secret (server-to-server): $APP_SECRET

Send an event:
  curl -s -X POST http://$ADDR/v1/events -H 'X-App-Key: $APP_KEY' \\
    -d '{"type":"install","device":{"gaid":"38400000-8cf0-11bd-b23e-10b96e40000d","platform":"android"}}'
Export what is stored:
  curl -s 'http://$ADDR/v1/export/events?app=$APP_ID' -H 'X-App-Secret: $APP_SECRET' | head
Attribution of the demo traffic (every install with the touch that earned it; multi-touch credit):
  curl -s 'http://$ADDR/v1/export/installs?app=$APP_ID' -H 'X-App-Secret: $APP_SECRET' | head -3
  curl -s 'http://$ADDR/v1/reports/mta?app=$APP_ID&model=markov&by=source' -H 'X-App-Secret: $APP_SECRET'
  curl -s 'http://$ADDR/v1/attribution?app=$APP_ID&device=ANY_DEVICE_ID' -H 'X-App-Key: $APP_KEY'
Reports (docs/reports.md): per day and network, cohorts, in the app's time zone and currency:
  curl -s 'http://$ADDR/v1/reports/overview?app=$APP_ID&from=$(date -u -d '14 days ago' +%F)&to=$(date -u +%F)&group_by=source&metrics=installs,cost,cpi,revenue,roas' -H 'X-App-Secret: $APP_SECRET'
  curl -s 'http://$ADDR/v1/reports/cohorts?app=$APP_ID&from=$(date -u -d '14 days ago' +%F)&to=$(date -u +%F)&group_by=source&days=0,1,3,7&metric=retention' -H 'X-App-Secret: $APP_SECRET'
  curl -s 'http://$ADDR/v1/reports/overview?app=$APP_ID&from=$(date -u -d '14 days ago' +%F)&to=$(date -u +%F)&group_by=campaign&credit=re_engagement' -H 'X-App-Secret: $APP_SECRET'
Fraud (docs/fraud.md): what the rules rejected, by rule and network; train the model on the demo's labels:
  curl -s 'http://$ADDR/v1/reports/fraud?app=$APP_ID&from=$(date -u -d '14 days ago' +%F)&to=$(date -u +%F)&group_by=source,reason' -H 'X-App-Secret: $APP_SECRET'
  $BIN fraud train --data $DATA --app $APP_ID --labels $DATA/demo-fraud-labels.csv
Log in as the demo owner (owner@demo.test, password $OWNER_PASS, kept in $DATA/demo-owner.json):
  TOKEN=\$(curl -s -X POST http://$ADDR/v1/auth/login \\
    -d '{"email":"owner@demo.test","password":"$OWNER_PASS"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
  curl -s http://$ADDR/v1/apps -H "Authorization: Bearer \$TOKEN"
Health and metrics: http://$ADDR/healthz  http://$ADDR/readyz  http://$ADDR/metrics
MSG
if [ -f web/dist/index.html ]; then
  cat <<MSG

Dashboard: http://$ADDR/
  log in as owner@demo.test with the password $OWNER_PASS

Ctrl-C stops the daemon.
MSG
else
  echo
  echo "The dashboard is not built (make web; it needs Node.js 20.19+): serving the API only. Ctrl-C stops the daemon."
fi
wait $pid
