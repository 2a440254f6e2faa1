// The model-health page of a Glideslope use case, hosted by the Airflow UI as a plugin React app.
// The host renders the default export with {dagId, runId, taskId, mapIndex}: on a DAG's tab the
// use case is the DAG id's prefix (<usecase>__<stage>); in the navigation the user picks one.
// Data: the plugin's JSON endpoints under /glideslope-health/api (glideslope.airflow.health).
import { useEffect, useMemo, useRef, useState } from "react";
import {
  Bar,
  CartesianGrid,
  ComposedChart,
  Line,
  ReferenceLine,
  ResponsiveContainer,
  Tooltip,
  XAxis,
  YAxis,
} from "recharts";

const MARKER = { promoted: "#1a7f37", rolled_back: "#bf8700", rejected: "#8c959f" };
const STATUS = { ok: "#1a7f37", drift: "#cf222e", insufficient_data: "#8c959f" };

const api = (path) => new URL(`glideslope-health/api/${path}`, document.baseURI).href;
const plugin = (path) => (path ? new URL(path.replace(/^\//, ""), document.baseURI).href : null);

async function getJson(path) {
  const r = await fetch(api(path), { credentials: "same-origin", headers: { Accept: "application/json" } });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(`${r.status}: ${body.detail || r.statusText} (${path})`);
  return body;
}

const fmt = (v, digits = 3) => (v === null || v === undefined ? "–" : Number(v).toFixed(digits));

function Section({ title, children, testId }) {
  return (
    <section data-testid={testId} style={{ margin: "18px 0" }}>
      <h3 style={{ fontSize: 16, fontWeight: 600, margin: "0 0 8px" }}>{title}</h3>
      {children}
    </section>
  );
}

function Guards({ summary }) {
  const g = summary.guards;
  const esc = g.escalation;
  const cell = { padding: "6px 12px", border: "1px solid #d0d7de", borderRadius: 6 };
  return (
    <div data-testid="guards" style={{ display: "flex", gap: 10, flexWrap: "wrap" }}>
      <div style={cell} data-testid="guard-cooldown">
        cooldown until <b>{g.cooldown_until || "–"}</b>
        {g.in_cooldown ? " (active)" : ""}
      </div>
      <div style={cell} data-testid="guard-budget">
        retrain budget left this week <b>{g.budget_left}</b> of {g.weekly_retrain_budget}
      </div>
      <div style={{ ...cell, color: g.paused ? "#cf222e" : undefined }} data-testid="guard-paused">
        automatic retraining <b>{g.paused ? "paused" : "active"}</b>
      </div>
      <div style={{ ...cell, color: esc ? "#cf222e" : undefined }} data-testid="guard-escalation">
        open escalation: <b>{esc ? `since ${esc.ds}` : "none"}</b>
        {esc ? ` — ${esc.reason}` : ""}
      </div>
      {g.as_of ? <div style={{ ...cell, border: "none" }}>as of night {g.as_of}</div> : null}
    </div>
  );
}

// A vertical marker at each promotion, rollback and rejection; a link to the MLflow run.
function markerLines(events) {
  return events
    .filter((e) => e.ds)
    .map((e, i) => (
      <ReferenceLine
        key={`${e.kind}-${e.version}-${i}`}
        x={e.ds}
        stroke={MARKER[e.kind] || "#57606a"}
        strokeDasharray={e.kind === "rejected" ? "2 3" : undefined}
        strokeWidth={e.kind === "rejected" ? 1 : 2}
        label={({ viewBox }) => (
          <a
            href={e.run_url || e.model_version_url || "#"}
            target="_blank"
            rel="noreferrer"
            data-testid={`marker-${e.kind}`}
            data-ds={e.ds}
            data-version={e.version}
          >
            <title>{`${e.kind} v${e.version} on ${e.ds}: ${e.reason || ""}`}</title>
            <text x={viewBox.x + 3} y={viewBox.y + 12} fontSize={11} fill={MARKER[e.kind] || "#57606a"}>
              {e.kind === "rolled_back" ? `↶v${e.to_version}` : `${e.kind === "rejected" ? "✗" : "★"}v${e.version}`}
            </text>
          </a>
        )}
      />
    ));
}

function pointDot(testId, key) {
  return (props) => {
    const { cx, cy, payload, index } = props;
    if (cx == null || cy == null || payload[key] == null) return <g key={`${testId}-${index}`} />;
    const color = STATUS[payload.status] || "#0969da";
    return (
      <circle
        key={`${testId}-${index}`}
        cx={cx}
        cy={cy}
        r={4}
        fill={color}
        stroke="white"
        data-testid={testId}
        data-ds={payload.ds}
        data-value={payload[key]}
      />
    );
  };
}

function NightTooltip({ active, payload, metricLabel }) {
  if (!active || !payload || !payload.length) return null;
  const n = payload[0].payload;
  return (
    <div style={{ background: "white", color: "#1f2328", border: "1px solid #d0d7de", padding: 8, fontSize: 12 }}>
      <b>{n.ds}</b> {n.status || ""}
      <div>live {metricLabel}: {fmt(n.metric)}</div>
      <div>drift share: {fmt(n.drift, 2)}</div>
      {n.columns?.length ? <div>drifted: {n.columns.join(", ")}</div> : null}
      {n.rows != null ? <div>predictions: {n.rows} rows, mean score {fmt(n.mean, 4)}</div> : null}
    </div>
  );
}

function Charts({ summary, nights, events }) {
  const metric = summary.metric;
  const days = new Set(nights.map((n) => n.ds));
  const data = nights.map((n) => ({
    ds: n.ds,
    status: n.check?.status,
    metric: n.check?.live_metric ?? null,
    drift: n.check?.drift_share ?? null,
    columns: n.check?.drifted_columns || [],
    rows: n.predictions?.rows ?? null,
    mean: n.predictions?.mean_score ?? null,
  }));
  // A decision on a day without a recorded night still gets its marker.
  for (const e of events) if (e.ds && !days.has(e.ds)) data.push({ ds: e.ds, metric: null, drift: null });
  data.sort((a, b) => (a.ds < b.ds ? -1 : 1));
  const markers = markerLines(events);
  const noMetric = data.every((d) => d.metric == null);
  const height = 240;
  const tip = <Tooltip content={<NightTooltip metricLabel={metric.label} />} />;
  return (
    <>
      <Section title={`Live ${metric.label} of the champion, night by night`} testId="metric-chart">
        {summary.performance_floor == null ? <p style={{ fontSize: 12 }}>No performance floor set (drift.performance_floor).</p> : null}
        {noMetric ? (
          <p style={{ fontSize: 12 }} data-testid="no-live-metric">No live {metric.label} in this range yet (labels arrive after the nights they score).</p>
        ) : null}
        {noMetric && summary.performance_floor == null ? null : (
        <ResponsiveContainer width="100%" height={height}>
          <ComposedChart data={data} margin={{ top: 18, right: 24, left: 0, bottom: 0 }}>
            <CartesianGrid strokeDasharray="3 3" opacity={0.4} />
            <XAxis dataKey="ds" fontSize={11} />
            <YAxis
              fontSize={11}
              domain={[(d) => (Number.isFinite(d) ? d - Math.abs(d) * 0.03 : 0), (d) => (Number.isFinite(d) ? d : 1)]}
              tickFormatter={(v) => Number(v).toFixed(3)}
            />
            {tip}
            {summary.performance_floor != null ? (
              <ReferenceLine
                y={summary.performance_floor}
                ifOverflow="extendDomain"
                stroke="#cf222e"
                strokeDasharray="6 3"
                label={{ value: `floor ${summary.performance_floor}`, fontSize: 11, fill: "#cf222e", position: "insideTopRight" }}
              />
            ) : null}
            {markers}
            <Line dataKey="metric" stroke="#0969da" connectNulls isAnimationActive={false} dot={pointDot("metric-point", "metric")} />
          </ComposedChart>
        </ResponsiveContainer>
        )}
      </Section>
      <Section title="Drift share of the checked columns" testId="drift-chart">
        <ResponsiveContainer width="100%" height={height}>
          <ComposedChart data={data} margin={{ top: 18, right: 24, left: 0, bottom: 0 }}>
            <CartesianGrid strokeDasharray="3 3" opacity={0.4} />
            <XAxis dataKey="ds" fontSize={11} />
            <YAxis fontSize={11} domain={[0, 1]} />
            {tip}
            <ReferenceLine
              y={summary.drift_share_threshold}
              ifOverflow="extendDomain"
              stroke="#cf222e"
              strokeDasharray="6 3"
              label={{ value: `threshold ${summary.drift_share_threshold}`, fontSize: 11, fill: "#cf222e", position: "insideTopRight" }}
            />
            {markers}
            <Line dataKey="drift" stroke="#8250df" connectNulls isAnimationActive={false} dot={pointDot("drift-point", "drift")} />
          </ComposedChart>
        </ResponsiveContainer>
      </Section>
      <Section title="Predictions per night" testId="predictions-chart">
        <ResponsiveContainer width="100%" height={height}>
          <ComposedChart data={data} margin={{ top: 18, right: 24, left: 0, bottom: 0 }}>
            <CartesianGrid strokeDasharray="3 3" opacity={0.4} />
            <XAxis dataKey="ds" fontSize={11} />
            <YAxis yAxisId="rows" fontSize={11} />
            <YAxis yAxisId="mean" orientation="right" fontSize={11} domain={["auto", "auto"]} />
            {tip}
            <Bar yAxisId="rows" dataKey="rows" fill="#54aeff" isAnimationActive={false} />
            <Line yAxisId="mean" dataKey="mean" stroke="#bc4c00" connectNulls isAnimationActive={false} dot={false} />
          </ComposedChart>
        </ResponsiveContainer>
      </Section>
    </>
  );
}

const th = { textAlign: "left", padding: "4px 8px", borderBottom: "1px solid #d0d7de", fontWeight: 600 };
const td = { padding: "4px 8px", borderBottom: "1px solid #eaeef2", verticalAlign: "top" };

function evidenceText(ev) {
  if (!ev) return null;
  const ci = ev.ci_low != null ? ` CI [${fmt(ev.ci_low, 4)}, ${fmt(ev.ci_high, 4)}]` : "";
  const worst = ev.worst_slice ? `; worst slice ${ev.worst_slice.column}=${ev.worst_slice.value} Δ ${fmt(ev.worst_slice.delta, 4)}` : "";
  return `${ev.metric} ${fmt(ev.challenger, 4)} vs ${fmt(ev.champion, 4)}, Δ ${fmt(ev.delta, 4)}${ci}${worst}`;
}

function Timeline({ timeline }) {
  if (!timeline.events.length) return <p>{timeline.note || "No decisions in this range."}</p>;
  return (
    <table data-testid="timeline" style={{ borderCollapse: "collapse", fontSize: 13, width: "100%" }}>
      <thead>
        <tr>
          <th style={th}>night</th>
          <th style={th}>event</th>
          <th style={th}>version</th>
          <th style={th}>reason</th>
          <th style={th}>evidence</th>
          <th style={th}>MLflow</th>
        </tr>
      </thead>
      <tbody>
        {timeline.events.map((e, i) => (
          <tr key={i} data-testid="timeline-event" data-kind={e.kind} data-version={e.version}>
            <td style={td}>{e.ds || "–"}</td>
            <td style={{ ...td, color: MARKER[e.kind], fontWeight: 600 }}>{e.kind.replace("_", " ")}</td>
            <td style={td}>
              {e.kind === "rolled_back" ? `v${e.version} → v${e.to_version}` : `v${e.version}`}
              {e.previous_champion && e.kind !== "rolled_back" ? ` (champion was v${e.previous_champion})` : ""}
            </td>
            <td style={td}>
              {e.reason}{e.message ? ` — ${e.message}` : ""}
              {e.review ? <div data-testid="review" style={{ fontSize: 12 }}>review: {e.review}</div> : null}
            </td>
            <td style={td}>{evidenceText(e.evidence) || e.numbers || ""}</td>
            <td style={td}>
              {e.run_url ? <a href={e.run_url} target="_blank" rel="noreferrer">run</a> : null}{" "}
              <a href={e.model_version_url} target="_blank" rel="noreferrer">model</a>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function Nights({ nights, metricLabel }) {
  return (
    <table data-testid="nights" style={{ borderCollapse: "collapse", fontSize: 13, width: "100%" }}>
      <thead>
        <tr>
          <th style={th}>night</th>
          <th style={th}>verdict</th>
          <th style={th}>live {metricLabel}</th>
          <th style={th}>drift share</th>
          <th style={th}>drifted columns</th>
          <th style={th}>predictions</th>
          <th style={th}>data quality</th>
        </tr>
      </thead>
      <tbody>
        {[...nights].reverse().map((n) => (
          <tr key={n.ds} data-testid="night" data-ds={n.ds}>
            <td style={td}>
              {n.check?.report_url ? (
                <a href={plugin(n.check.report_url)} target="_blank" rel="noreferrer" data-testid="report-link">{n.ds}</a>
              ) : n.ds}
            </td>
            <td style={{ ...td, color: STATUS[n.check?.status] }}>{n.check?.status || "–"}</td>
            <td style={td}>{fmt(n.check?.live_metric)}</td>
            <td style={td}>{fmt(n.check?.drift_share, 2)}</td>
            <td style={td}>{(n.check?.drifted_columns || []).join(", ")}</td>
            <td style={td}>{n.predictions ? `${n.predictions.rows} rows, mean ${fmt(n.predictions.mean_score, 4)}` : "–"}</td>
            <td style={{ ...td, color: n.quality.status === "quarantined" ? "#cf222e" : undefined }} data-testid="quality">
              {n.quality.status || "–"}
              {n.quality.failures.map((f, i) => (
                <div key={i} style={{ fontSize: 12 }}>
                  {f.source}: {f.column ? `column ${f.column} ` : ""}rule {f.rule}
                  {f.bad_rows != null ? ` (${f.bad_rows} bad rows)` : ""}
                </div>
              ))}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function UseCaseHealth({ usecase }) {
  const [range, setRange] = useState({ start: "", end: "" });
  const [data, setData] = useState(null);
  const [error, setError] = useState(null);
  const began = useRef(performance.now());
  const [loadMs, setLoadMs] = useState(null);

  useEffect(() => {
    let live = true;
    const q = new URLSearchParams();
    if (range.start) q.set("start", range.start);
    if (range.end) q.set("end", range.end);
    const qs = q.toString() ? `?${q}` : "";
    began.current = performance.now();
    setError(null);
    Promise.all([
      getJson(`${usecase}/summary`),
      getJson(`${usecase}/nights${qs}`),
      getJson(`${usecase}/timeline${qs}`),
    ])
      .then(([summary, nights, timeline]) => {
        if (!live) return;
        setData({ summary, nights, timeline });
        setLoadMs(Math.round(performance.now() - began.current));
        if (!range.start && !range.end && nights.start) setRange({ start: nights.start, end: nights.end });
      })
      .catch((e) => live && setError(String(e.message || e)));
    return () => {
      live = false;
    };
  }, [usecase, range.start, range.end]);

  const champion = data?.timeline.champion;
  const timelineEvents = useMemo(() => data?.timeline.events || [], [data]);
  if (error) return <p data-testid="health-error" style={{ color: "#cf222e" }}>{error}</p>;
  if (!data) return <p>Loading model health of {usecase}…</p>;
  const { summary, nights } = data;
  return (
    <div data-testid="model-health" data-usecase={usecase} data-load-ms={loadMs ?? ""}>
      <div style={{ display: "flex", gap: 16, alignItems: "baseline", flexWrap: "wrap" }}>
        <h2 style={{ fontSize: 20, fontWeight: 700, margin: 0 }}>{usecase}</h2>
        <span data-testid="champion">champion: <b>{champion ? `v${champion}` : "none yet"}</b></span>
        <span>metric: {summary.metric.label} ({summary.metric.higher_is_better ? "higher" : "lower"} is better)</span>
        <label>
          from <input type="date" data-testid="range-start" value={range.start} onChange={(e) => setRange({ ...range, start: e.target.value })} />
        </label>
        <label>
          to <input type="date" data-testid="range-end" value={range.end} onChange={(e) => setRange({ ...range, end: e.target.value })} />
        </label>
      </div>
      <Section title="Loop guards" testId="guards-section">
        <Guards summary={summary} />
      </Section>
      <Charts summary={summary} nights={nights.nights} events={timelineEvents} />
      <Section title="Champion timeline" testId="timeline-section">
        <Timeline timeline={data.timeline} />
      </Section>
      <Section title="Nights" testId="nights-section">
        <Nights nights={nights.nights} metricLabel={summary.metric.label} />
      </Section>
    </div>
  );
}

export default function ModelHealth({ dagId }) {
  const fromDag = dagId && dagId.includes("__") ? dagId.split("__")[0] : null;
  const [usecases, setUsecases] = useState(null);
  const [chosen, setChosen] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    if (fromDag) return;
    getJson("usecases")
      .then((r) => {
        setUsecases(r.usecases);
        setChosen((c) => c || r.usecases[0] || null);
      })
      .catch((e) => setError(String(e.message || e)));
  }, [fromDag]);
  const usecase = fromDag || chosen;
  return (
    <div style={{ padding: 16, maxWidth: 1400 }}>
      {!fromDag && usecases ? (
        <div style={{ marginBottom: 8 }}>
          use case{" "}
          <select data-testid="usecase-select" value={chosen || ""} onChange={(e) => setChosen(e.target.value)}>
            {usecases.map((u) => (
              <option key={u} value={u}>{u}</option>
            ))}
          </select>
        </div>
      ) : null}
      {error ? <p data-testid="health-error" style={{ color: "#cf222e" }}>{error}</p> : null}
      {!fromDag && usecases && !usecases.length ? <p>No use case whose DAGs you may read.</p> : null}
      {usecase ? <UseCaseHealth key={usecase} usecase={usecase} /> : null}
    </div>
  );
}
