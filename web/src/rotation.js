// The picture of the balancing: one bar per replica in Envoy's rotation, live.
//
// Which replicas there are, whether Envoy sends them calls, and what they are (Python or
// Go, by the name Envoy found them by: py-server, go-server) come from Envoy itself:
// GET /rotation, its own view of the upstream cluster (envoy/envoy.yaml answers it with
// the read-only admin page /clusters?format=json), polled twice a second. Each call the
// page makes lands on the bar of the replica that answered it: Envoy names that replica's
// address in a response header (x-grpctest-upstream), the reply names the replica.

const CLUSTER = "grpctest";
const POLL_MS = 500;
export const UPSTREAM_HEADER = "x-grpctest-upstream";

// Envoy's flags for a host it sends no calls to (as grpctest_devtools.envoy reads them).
const OUT_OF_ROTATION = {
  failed_active_health_check: "out: failed its health check",
  failed_outlier_check: "out: ejected (outlier detection)",
  pending_active_hc: "out: not health-checked yet",
};
const KINDS = { python: "Python", go: "Go", other: "?" };

const bars = new Map(); // address -> its bar (an element; .host: Envoy's last view of it)
const landings = new Map(); // address -> { replica, calls }: the page's calls it answered

function address(host) {
  const socket = host.address.socket_address;
  return `${socket.address}:${socket.port_value}`;
}

function kind(hostname = "") {
  if (hostname.includes("go-server")) return "go";
  return hostname.includes("py-server") ? "python" : "other";
}

// Why Envoy sends the host no calls, or null if it does.
function outOfRotation(flags = {}) {
  const flag = Object.keys(OUT_OF_ROTATION).find((name) => flags[name]);
  if (flag) return OUT_OF_ROTATION[flag];
  const eds = flags.eds_health_status ?? "HEALTHY";
  return eds === "HEALTHY" ? null : `out: ${eds.toLowerCase()}`;
}

function sentByEnvoy(host) {
  return Number(host.stats?.find((stat) => stat.name === "rq_total")?.value ?? 0);
}

function newBar(hostAddress) {
  const bar = document.createElement("div");
  bar.className = "bar";
  bar.dataset.host = hostAddress;
  for (const part of ["name", "kind", "track", "calls", "health"]) {
    const span = document.createElement("span");
    span.className = part;
    bar.append(span);
  }
  const fill = document.createElement("span");
  fill.className = "fill";
  bar.querySelector(".track").append(fill);
  return bar;
}

function draw(bar, most) {
  const host = bar.host;
  const seen = landings.get(bar.dataset.host) ?? { replica: "", calls: 0 };
  const out = outOfRotation(host.health_status);
  Object.assign(bar.dataset, { kind: kind(host.hostname), health: out ? "out" : "in", replica: seen.replica });
  bar.querySelector(".name").textContent = seen.replica || bar.dataset.host;
  bar.querySelector(".name").title = `${host.hostname ?? ""} ${bar.dataset.host}`.trim();
  bar.querySelector(".kind").textContent = KINDS[bar.dataset.kind];
  bar.querySelector(".fill").style.width = `${most ? (100 * seen.calls) / most : 0}%`;
  bar.querySelector(".calls").textContent = `${seen.calls} ${seen.calls === 1 ? "call" : "calls"}`;
  bar.querySelector(".calls").title = `Envoy has sent it ${sentByEnvoy(host)} calls (every caller's)`;
  bar.querySelector(".health").textContent = out ?? "in rotation";
}

function drawAll() {
  const most = Math.max(0, ...[...bars.keys()].map((key) => landings.get(key)?.calls ?? 0));
  for (const bar of bars.values()) draw(bar, most);
}

// Python first, then Go; by name (the replica's once a call has landed, else the address).
function order(a, b) {
  const rank = { python: 0, go: 1, other: 2 };
  const byKind = rank[a.dataset.kind] - rank[b.dataset.kind];
  return byKind || a.querySelector(".name").textContent.localeCompare(b.querySelector(".name").textContent, "en", { numeric: true });
}

function show(hosts) {
  const current = new Set(hosts.map(address));
  for (const key of bars.keys()) if (!current.has(key)) bars.delete(key); // gone from Envoy's view
  for (const host of hosts) {
    const key = address(host);
    if (!bars.has(key)) bars.set(key, newBar(key));
    bars.get(key).host = host;
  }
  drawAll();
  const sorted = [...bars.values()].sort(order);
  const box = document.getElementById("rotation");
  // Re-placed only when the order changes (moving an element restarts its animation).
  if (sorted.some((bar, i) => box.children[i] !== bar) || box.children.length !== sorted.length) {
    box.replaceChildren(...sorted);
  }
  const serving = sorted.filter((bar) => bar.dataset.health === "in").length;
  return `${serving} of ${sorted.length} replicas in rotation (Envoy's view, every ${POLL_MS} ms)`;
}

async function poll() {
  let text;
  try {
    const reply = await fetch("/rotation", { cache: "no-store", signal: AbortSignal.timeout(2000) });
    if (!reply.ok) throw new Error(`HTTP ${reply.status}`);
    const view = await reply.json();
    const cluster = view.cluster_statuses?.find((status) => status.name === CLUSTER);
    text = show(cluster?.host_statuses ?? []);
  } catch (err) {
    text = `Envoy's view of the rotation is not available here (${err.message})`;
  }
  document.getElementById("rotation-status").textContent = text;
  setTimeout(poll, POLL_MS);
}

// Draws the rotation from now on.
export function showRotation() {
  poll();
}

// A call of the page answered by `replica` at `hostAddress` (the upstream header).
export function landed(hostAddress, replica) {
  if (!hostAddress) return;
  const seen = landings.get(hostAddress) ?? { replica, calls: 0 };
  landings.set(hostAddress, { replica, calls: seen.calls + 1 });
  const bar = bars.get(hostAddress);
  if (!bar) return; // drawn at the next poll
  drawAll();
  bar.classList.remove("landed");
  void bar.querySelector(".track").offsetWidth; // a reflow: the animation starts again
  bar.classList.add("landed");
}
