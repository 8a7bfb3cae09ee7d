"""Jinja2 templates of the prediction reports (kept as strings: no package-data files)."""

CSS = """
:root{--ink:#111827;--muted:#6b7280;--line:#e5e7eb;--card:#fff;--bg:#f3f4f6;--accent:#4f46e5}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);
 font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif}
header.top{background:linear-gradient(120deg,#1e1b4b,#312e81 55%,#4338ca);color:#fff;padding:22px 32px 20px}
header.top .brand{font-size:12px;letter-spacing:.12em;text-transform:uppercase;opacity:.75}
header.top h1{margin:4px 0 10px;font-size:26px;font-weight:650;word-break:break-all}
.chips{display:flex;flex-wrap:wrap;gap:6px}
.chip{display:inline-block;padding:2px 10px;border-radius:999px;font-size:12.5px;
 background:rgba(255,255,255,.14);border:1px solid rgba(255,255,255,.25)}
.chip.ok{background:#dcfce7;color:#166534;border-color:#bbf7d0}
.chip.missing{background:#fee2e2;color:#991b1b;border-color:#fecaca}
main{max-width:1240px;margin:0 auto;padding:20px 24px 40px}
.card{background:var(--card);border:1px solid var(--line);border-radius:14px;padding:18px 20px;
 margin-bottom:18px;box-shadow:0 1px 2px rgba(0,0,0,.04)}
.card h2{font-size:17px;margin:0 0 4px}
.card .sub{color:var(--muted);font-size:13px;margin:0 0 12px}
.grid2{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:18px}
.grid2>.card{margin-bottom:0}
.grid2+.card,.grid2+.grid2{margin-top:18px}
.summary{border-left:6px solid var(--accent)}
.summary .headline{font-size:24px;font-weight:700;margin:0 0 8px}
.summary ul{margin:6px 0 10px;padding-left:20px}
.summary li{margin:3px 0}
.caveats{font-size:12.5px;color:var(--muted);border-top:1px dashed var(--line);padding-top:8px}
.caveats p{margin:3px 0}
.strip{display:grid;grid-template-columns:repeat(auto-fill,minmax(120px,1fr));gap:10px}
.strip figure{margin:0;text-align:center}
.strip figcaption{font-size:11.5px;color:var(--muted);margin-top:3px}
.strip img,.strip svg{width:100%;border-radius:8px;display:block;background:#111}
.strip.scenes{grid-template-columns:repeat(auto-fill,minmax(190px,1fr))}
.placeholder{aspect-ratio:1/1;border-radius:8px;display:flex;align-items:center;justify-content:center;
 background:repeating-linear-gradient(45deg,#f3f4f6,#f3f4f6 6px,#e5e7eb 6px,#e5e7eb 12px);
 color:var(--muted);font-size:12px}
.rowlabel{font-weight:600;font-size:13px;margin:12px 0 6px;display:flex;gap:8px;align-items:center}
.dot{width:10px;height:10px;border-radius:50%;display:inline-block}
.transcript{background:#f8fafc;border:1px solid var(--line);border-radius:10px;padding:10px 14px;
 font-size:15px;margin-top:10px}
.transcript .src{color:var(--muted);font-size:12px;display:block;margin-bottom:2px}
.heatmaps{display:flex;flex-wrap:wrap;gap:22px;align-items:flex-start}
.heatmaps figure{margin:0}
.heatmaps figcaption{font-size:12.5px;color:var(--muted);max-width:440px;margin-top:4px}
table.kv{border-collapse:collapse;font-size:13.5px;width:100%}
table.kv td,table.kv th{border-bottom:1px solid var(--line);padding:5px 8px;text-align:left;vertical-align:top}
table.kv th{color:var(--muted);font-weight:500;width:200px}
.warn{background:#fffbeb;border:1px solid #fde68a;color:#92400e;border-radius:10px;padding:8px 12px;
 font-size:13.5px;margin:0 0 12px}
footer{color:var(--muted);font-size:12px;text-align:center;padding:10px 0 30px}
a{color:var(--accent)}
table.batch{border-collapse:collapse;width:100%;font-size:14px}
table.batch th{font-size:12px;text-transform:uppercase;letter-spacing:.05em;color:var(--muted);
 text-align:left;padding:8px;border-bottom:2px solid var(--line)}
table.batch td{padding:8px;border-bottom:1px solid var(--line);vertical-align:middle}
table.batch img{height:64px;border-radius:8px;display:block}
.legend{display:flex;flex-wrap:wrap;gap:10px;font-size:12px;color:var(--muted)}
.big{font-size:20px;font-weight:700}
@media print{body{background:#fff}.card{break-inside:avoid;box-shadow:none}}
"""

VIDEO = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="mepr {{ r.mepr_version }}">
<title>{{ r.video.file_name }} · mepr prediction</title>
<style>{{ css }}</style>
</head>
<body>
<header class="top">
  <div class="brand">mepr · multimodal emotion &amp; personality recognition</div>
  <h1>{{ r.video.file_name }}</h1>
  <div class="chips">
    {% for c in facts %}<span class="chip">{{ c }}</span>{% endfor %}
    {% for m in r.model.modalities %}
      <span class="chip {{ 'ok' if r.modalities[m].present else 'missing' }}" data-modality="{{ m }}">{{ '✓' if r.modalities[m].present else '✗' }} {{ m }}</span>
    {% endfor %}
  </div>
</header>
<main>
<section class="card summary" id="summary">
  <p class="headline">{{ s.headline }}</p>
  <ul>{% for p in s.points %}<li>{{ p }}</li>{% endfor %}</ul>
  <div class="caveats">{% for c in s.caveats %}<p>{{ c }}</p>{% endfor %}</div>
</section>
{% if r.warnings %}<div class="warn"><b>Notes:</b> {{ r.warnings | join('; ') }}</div>{% endif %}
<div class="grid2">
  <section class="card" id="emotions">
    <h2>Emotion</h2>
    <p class="sub">Probabilities over 7 classes (sum to 100 %). The dashed line is the 1/7 presence threshold of the evaluation.</p>
    {{ emotion_chart }}
  </section>
  <section class="card" id="traits">
    <h2>Personality (Big Five)</h2>
    <p class="sub">Apparent-trait scores in [0, 1]; the dashed line marks the middle (0.5).</p>
    {{ trait_chart }}
  </section>
</div>
<section class="card" id="keyframes">
  <h2>Key frames</h2>
  <p class="sub">{% if n_frames %}The {{ n_frames }} frames the model saw{% if n_shown < n_frames %} ({{ n_shown }} shown){% endif %}{% else %}What the model would see{% endif %}: the scene with the detected
  <span style="color:#e11d48;font-weight:600">face</span> and <span style="color:#f97316;font-weight:600">body</span> boxes, then the face and body crops the encoders embedded.</p>
  {% if frames %}
  <div class="rowlabel"><span class="dot" style="background:#0ea5e9"></span>Scene</div>
  <div class="strip scenes">
    {% for f in frames %}<figure>{{ f.scene }}<figcaption>frame {{ f.frame_index }} · {{ '%.2f' % f.timestamp }} s</figcaption></figure>{% endfor %}
  </div>
  <div class="rowlabel"><span class="dot" style="background:#e11d48"></span>Face</div>
  <div class="strip">
    {% for f in frames %}<figure>{% if f.face %}<img class="keyframe face" alt="face crop, frame {{ f.frame_index }}" src="{{ f.face }}">{% else %}<div class="placeholder keyframe-missing face">no face</div>{% endif %}<figcaption>{% if f.face_score is not none %}score {{ '%.2f' % f.face_score }}{% else %}—{% endif %}</figcaption></figure>{% endfor %}
  </div>
  <div class="rowlabel"><span class="dot" style="background:#f97316"></span>Body</div>
  <div class="strip">
    {% for f in frames %}<figure>{% if f.body %}<img class="keyframe body" alt="body crop, frame {{ f.frame_index }}" src="{{ f.body }}">{% else %}<div class="placeholder keyframe-missing body">no person</div>{% endif %}<figcaption>{% if f.body_score is not none %}score {{ '%.2f' % f.body_score }}{% else %}—{% endif %}</figcaption></figure>{% endfor %}
  </div>
  {% else %}
  <p class="placeholder" style="aspect-ratio:auto;padding:24px">No frames could be decoded{% if r.modalities.scene and r.modalities.scene.missing_reason %}: {{ r.modalities.scene.missing_reason }}{% endif %}.</p>
  {% endif %}
</section>
<section class="card" id="audio">
  <h2>Audio and transcript</h2>
  <p class="sub">{% if r.video.has_audio %}{{ '%.1f' % r.video.audio_seconds }} s of audio at {{ sample_rate }} Hz; recognised words above the waveform, sampled frames as dashed markers.{% else %}This video has no usable audio track.{% endif %}</p>
  {{ waveform }}
  <div class="transcript"><span class="src">transcript · {{ r.transcript.source }}</span>{% if r.transcript.text %}{{ r.transcript.text }}{% else %}<i>(empty)</i>{% endif %}</div>
</section>
<section class="card" id="modalities">
  <h2>What each modality says</h2>
  <p class="sub">The stage-2 (cross-domain) model of each modality on its own, and the fused result in the last row. Hatched: modality missing.</p>
  <div class="heatmaps">
    <figure>{{ modality_emotion }}<figcaption>Emotion probabilities per modality.</figcaption></figure>
    <figure>{{ modality_traits }}<figcaption>Trait scores per modality.</figcaption></figure>
  </div>
</section>
<section class="card" id="fusion">
  <h2>Inside the fusion model</h2>
  <p class="sub">Attention weights captured from the fusion model while it made this prediction, and how much each modality moves the result.</p>
  <div class="heatmaps">
    {% if query_attention %}<figure>{{ query_attention }}<figcaption>Query attention: how much the emotion and the personality query read from each modality node (mean over heads; each row sums to 1).</figcaption></figure>{% endif %}
    {% if graph_attention %}<figure>{{ graph_attention }}<figcaption>Graph attention between modality nodes: row = the node being updated, column = where it gathers from (rows sum to 1; missing modalities take no part).</figcaption></figure>{% endif %}
    <figure>{{ contributions }}<figcaption>Leave-one-out contributions: fused prediction minus the prediction without that modality (emotion in probability points, traits in score units). Blue: the modality pushes the value up; red: down.</figcaption></figure>
  </div>
</section>
<section class="card" id="details">
  <h2>Details</h2>
  <table class="kv">
    <tr><th>File</th><td>{{ r.video.path }}</td></tr>
    <tr><th>Video</th><td>{{ facts | join(' · ') }}</td></tr>
    <tr><th>Model</th><td>{{ r.model.dir }} (fusion sha256 {{ r.model.fusion_sha256[:12] }}…; trained with mepr {{ r.model.trained_with_mepr }})</td></tr>
    <tr><th>Encoders</th><td>{% for m, e in r.model.encoders.items() %}{{ m }}: <code>{{ e }}</code>{% if not loop.last %} · {% endif %}{% endfor %}</td></tr>
    <tr><th>Timings</th><td>{% for k, v in r.timings_s.items() %}{{ k[:-2] if k.endswith('_s') else k }} {{ '%.2f' % v }} s{% if not loop.last %} · {% endif %}{% endfor %}<br><span style="color:#6b7280;font-size:12px">embed and models: this video's share of its batch</span></td></tr>
    <tr><th>Machine-readable</th><td><a href="prediction.json">prediction.json</a></td></tr>
  </table>
</section>
</main>
<footer>Generated by mepr {{ r.mepr_version }} · a static page: no scripts, no network.</footer>
</body>
</html>
"""

INDEX = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mepr predictions · {{ summary.n_ok }} video(s)</title>
<style>{{ css }}</style>
</head>
<body>
<header class="top">
  <div class="brand">mepr · batch report</div>
  <h1>{{ summary.n_videos }} video{{ '' if summary.n_videos == 1 else 's' }}: {{ summary.n_ok }} predicted{% if summary.n_failed %}, {{ summary.n_failed }} failed{% endif %}</h1>
  <div class="chips">
    <span class="chip">model {{ summary.model }}</span>
    <span class="chip">{{ '%.1f' % summary.seconds.total }} s in total</span>
    <span class="chip">{{ '%.2f' % summary.videos_per_second if summary.videos_per_second == summary.videos_per_second else '–' }} videos/s (models loaded in {{ '%.1f' % summary.seconds.load_models }} s)</span>
    <span class="chip">{{ summary.created }}</span>
  </div>
</header>
<main>
{% if rows %}
<section class="card">
  <h2>Predictions</h2>
  <div class="legend">Traits:{% for t in traits %} <span><span class="dot" style="background:{{ t.colour }}"></span> {{ t.label }}</span>{% endfor %}</div>
  <table class="batch" id="videos">
    <thead><tr><th></th><th>Video</th><th>Emotion</th><th>Emotion probabilities</th><th>Traits</th><th>Modalities</th><th>Time</th></tr></thead>
    <tbody>
    {% for row in rows %}
      <tr data-video="{{ row.id }}">
        <td>{% if row.thumb %}<a href="{{ row.href }}"><img src="{{ row.thumb }}" alt="{{ row.name }}"></a>{% endif %}</td>
        <td><a href="{{ row.href }}"><b>{{ row.name }}</b></a><br><span style="color:#6b7280;font-size:12px">{{ row.facts }}</span></td>
        <td><span class="big">{{ row.top }}</span><br><span style="color:#6b7280">{{ '%.0f' % (100 * row.top_p) }} %</span></td>
        <td>{{ row.emotion_svg }}</td>
        <td>{{ row.traits_svg }}</td>
        <td>{% for m, ok in row.mods %}<span class="chip {{ 'ok' if ok else 'missing' }}">{{ m }}</span> {% endfor %}</td>
        <td>{{ '%.2f' % row.seconds }} s</td>
      </tr>
    {% endfor %}
    </tbody>
  </table>
</section>
{% endif %}
{% if summary.failed %}
<section class="card" id="failed">
  <h2>Could not be processed</h2>
  <table class="kv">{% for f in summary.failed %}<tr class="failed"><th>{{ f.path }}</th><td>{{ f.error }}</td></tr>{% endfor %}</table>
</section>
{% endif %}
</main>
<footer>Generated by mepr · <a href="summary.json">summary.json</a> · a static page: no scripts, no network.</footer>
</body>
</html>
"""
