// The live page: microphone -> AudioWorklet (16-bit PCM blocks) -> protocol v1 over a
// WebSocket to this server; segment events -> "speaking now" and a timeline of the last 30 s.
const WINDOW_S = 30;
const NOW_S = 1.5; // a provisional segment ending this close to the newest audio counts as "now"
const BLOCK_S = 0.1;
const MIN_RATE = 8000;
const MAX_RATE = 48000;
const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"];

const params = new URLSearchParams(location.search);
const $ = (id) => document.getElementById(id);

// everything the page knows; window.streamdiar lets tests and curious people look at it
const state = {
  status: "idle", session: null, done: null, error: null,
  speakers: [], // labels in order of first appearance
  finals: [], // final segments: never change
  provisional: [], // the current provisional segments (highest revision)
  revision: -1, // highest revision seen in any segment event
  audioS: 0, // audio seconds the server had processed at its latest event
  sentS: 0, // audio seconds sent
};
window.streamdiar = state;
let capture = null;

function setStatus(text, isError = false) {
  state.status = text;
  $("status").textContent = text;
  $("status").classList.toggle("error", isError);
}

function streamUrl() {
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/v1/stream`;
}

function colour(speaker) {
  return PALETTE[state.speakers.indexOf(speaker) % PALETTE.length];
}

function addSpeaker(speaker) {
  if (state.speakers.includes(speaker)) return;
  state.speakers.push(speaker);
  const item = document.createElement("li");
  item.dataset.speaker = speaker;
  item.textContent = speaker; // labels are text, never markup
  item.style.setProperty("--colour", colour(speaker));
  $("speakers").appendChild(item);
}

function onSegment(event) {
  addSpeaker(event.speaker);
  state.audioS = Math.max(state.audioS, event.audio_s ?? event.end);
  if (event.revision > state.revision) {
    // a newer update supersedes every earlier provisional segment
    state.revision = event.revision;
    state.provisional = [];
  }
  if (event.final) state.finals.push(event);
  else if (event.revision === state.revision) state.provisional.push(event);
}

function speakingNow() {
  return [...new Set(state.provisional.filter((s) => s.end >= state.audioS - NOW_S).map((s) => s.speaker))];
}

function render() {
  const now = speakingNow();
  $("now").textContent = now.length ? now.join(", ") : "nobody";
  for (const item of $("speakers").children) item.classList.toggle("speaking", now.includes(item.dataset.speaker));
  drawTimeline();
}

function drawTimeline() {
  const canvas = $("timeline");
  const g = canvas.getContext("2d");
  const axis = 18;
  const rows = Math.max(1, state.speakers.length);
  const rowH = (canvas.height - axis) / rows;
  const t1 = Math.max(WINDOW_S, state.audioS);
  const t0 = t1 - WINDOW_S;
  const x = (t) => ((t - t0) / WINDOW_S) * canvas.width;
  g.clearRect(0, 0, canvas.width, canvas.height);
  const paint = (segments, alpha) => {
    g.globalAlpha = alpha;
    for (const s of segments) {
      if (s.end < t0) continue;
      const row = state.speakers.indexOf(s.speaker);
      g.fillStyle = colour(s.speaker);
      g.fillRect(x(Math.max(s.start, t0)), row * rowH + 3, Math.max(1, x(s.end) - x(Math.max(s.start, t0))), rowH - 6);
    }
  };
  paint(state.finals, 1.0);
  paint(state.provisional, 0.4);
  g.globalAlpha = 1;
  g.fillStyle = "#55606b";
  g.font = "11px system-ui, sans-serif";
  for (let t = Math.ceil(t0 / 5) * 5; t <= t1; t += 5) g.fillText(`${t}s`, x(t) + 2, canvas.height - 4);
}

function onEvent(event) {
  switch (event.type) {
    case "ready":
      state.session = event.session;
      capture.ready = true;
      setStatus("listening");
      $("stop").disabled = false;
      break;
    case "segment":
      onSegment(event);
      break;
    case "done":
      state.done = event;
      state.provisional = []; // the stream is over: nobody speaks now
      setStatus(`done: ${event.seconds.toFixed(1)} s of audio`);
      break;
    case "error":
      state.error = event;
      setStatus(`server error (${event.code}): ${event.message}`, true);
      if (event.code === "unauthorized") $("token-field").hidden = false;
      break;
  }
  render();
}

async function start() {
  $("start").disabled = true;
  setStatus("asking for the microphone...");
  try {
    const media = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
    });
    let ctx = new AudioContext();
    if (ctx.sampleRate < MIN_RATE || ctx.sampleRate > MAX_RATE) {
      await ctx.close();
      ctx = new AudioContext({ sampleRate: MAX_RATE });
    }
    await ctx.audioWorklet.addModule("worklet.js");
    const rate = Math.round(ctx.sampleRate);
    const node = new AudioWorkletNode(ctx, "pcm-sender", {
      numberOfInputs: 1, numberOfOutputs: 1, processorOptions: { blockFrames: Math.round(rate * BLOCK_S) },
    });
    const mute = ctx.createGain(); // keeps the node in the rendering graph without playing anything
    mute.gain.value = 0;
    ctx.createMediaStreamSource(media).connect(node).connect(mute).connect(ctx.destination);
    const ws = new WebSocket(streamUrl());
    ws.binaryType = "arraybuffer";
    capture = { ctx, media, node, ws, ready: false };
    node.port.onmessage = (e) => {
      if (!capture || !capture.ready || ws.readyState !== WebSocket.OPEN) return;
      ws.send(e.data);
      state.sentS += e.data.byteLength / 2 / rate;
    };
    const token = params.get("token") || $("token").value;
    ws.onopen = () => {
      const startMessage = { type: "start", sample_rate: rate, encoding: "pcm_s16le", channels: 1 };
      if (token) startMessage.token = token;
      ws.send(JSON.stringify(startMessage));
      setStatus("connecting...");
    };
    ws.onmessage = (e) => onEvent(JSON.parse(e.data));
    ws.onclose = (e) => {
      if (!state.done && !state.error) setStatus(`connection closed (${e.code}${e.reason ? ": " + e.reason : ""})`, e.code !== 1000);
      release();
    };
    await ctx.resume();
  } catch (err) {
    setStatus(`could not start: ${err.message}`, true);
    release();
  }
}

function stop() {
  if (!capture) return;
  capture.ready = false; // no audio after stop
  if (capture.ws.readyState === WebSocket.OPEN) capture.ws.send(JSON.stringify({ type: "stop" }));
  setStatus("finishing...");
  stopAudio();
}

function stopAudio() {
  if (!capture) return;
  capture.media.getTracks().forEach((track) => track.stop());
  capture.ctx.close().catch(() => {});
}

function release() {
  stopAudio();
  capture = null;
  $("start").disabled = false;
  $("stop").disabled = true;
}

$("start").addEventListener("click", () => {
  // a new session starts its audio time at 0: forget the previous one
  Object.assign(state, { done: null, error: null, session: null, speakers: [], finals: [], provisional: [], revision: -1, audioS: 0, sentS: 0 });
  $("speakers").replaceChildren();
  start();
});
$("stop").addEventListener("click", stop);
$("window-s").textContent = WINDOW_S;
render();
if (params.get("autostart") === "1") start();
