"""Train the built-in shapes CLIP from scratch on procedurally drawn scenes (CPU, reproducible from --seed).

    python scripts/train_shapes_clip.py --seed 0 --steps 1200 --minutes 27 --threads 1 --out pixgen/shapes/assets

The shipped weights come from that command on a 2-core CPU: it stopped on time after 1003 of 1200 steps, its
lr schedule following the clock, so a re-run matches it only approximately; ``--minutes 0 --steps 1003``
bounds a run by steps alone, with the same schedule shape, and is exactly repeatable. Held-out: hard negatives 0.82
(colour 1.0, background 1.0, size 0.94, position 0.66, shape 0.58, relation 0.52, order 0.52, count 0.67).
The shipped CNN CLIP (``--clip shapes_cnn``) takes two commands: ``--config scripts/configs/shapes_clip_cnn.json
--seed 0 --shape-warmup 200 --aux-weight 1 --adv-eps 1.5 --robust-after 0.6 --shape-twins 48 --twins-after 0.6
--steps 800 --minutes 29 --threads 2 --name shapes_cnn --out DIR`` (all 800 steps in 27 minutes; hard negatives
0.92, shape 0.88; ``scripts/shape_preference.py``: the right shape preferred in 0.91 of one-shape swaps), then
``--config DIR/shapes_cnn.json --init-weights DIR/shapes_cnn.safetensors --seed 5 --aux-weight 1 --adv-eps 1.5
--shape-twins 40 --chains 16 --chain-levels 4 --lr 5e-4 --steps 300 --minutes 22 --threads 2 --name shapes_cnn
--out pixgen/shapes/assets`` (300 steps in 22 minutes: VQGAN-drawer runs against the CNN itself as negatives, as the
first CNN was fooled by generation's blobs; hard negatives 0.92, shape 0.91).

Contrastive training with soft targets: in a batch of (image, caption) pairs, caption j counts as true for
image i whenever it describes image i's scene, so the image->text target is uniform over all true captions
(and symmetrically text->image). Half of each batch are one-attribute variants of the other half (hard
negatives); ``--clutter`` scenes that no caption describes (several shapes of one colour) teach counting, and
``--text-negatives`` extra captions per image change its shape, size, position, relation or word order.
Images go through the same kind of cutouts generation uses. At the end it prints held-out retrieval accuracies
and accuracies per kind of one-attribute change, and writes ``NAME.safetensors`` (fp16), its model config
``NAME.json`` and the BPE merges it names (``--name``, default ``shapes_clip``). The model is trained with
CLIP's full vocabulary (``scripts/configs/shapes_clip_vit.json``) and saved cut to the shapes world's
(``pixgen.shapes.vocab``: identical text embeddings, 1.5 MB instead of 7.7).

Experimental options (measured in docs/shapes_experiments.md; the CNN ones are in the shipped CNN's commands):
``--config scripts/configs/shapes_clip_cnn.json`` (a CNN image tower, ``pixgen.shapes.cnn``) or
``scripts/configs/shapes_clip_regions.json`` (soft palette masks and their moments, ``pixgen.shapes.regions``)
with ``--shape-warmup`` (supervised shape naming first) and ``--aux-weight`` (a content head); ``--dreams``
(gradient-ascent images as negatives); ``--stray N`` (N scenes per batch repeated with stray palette-coloured
cells, as negatives); ``--chains N`` (N generation runs of the VQGAN drawer, ``pixgen.shapes.train.chains``, advanced
``--chain-steps`` per training step with ``--chain-levels`` latent grids: the images the oracle rejects are
negatives for their captions; ``--chains-after F`` starts them after the fraction F of the run;
``--chain-start prior --chain-warmup 15 --chain-smoothness 0 --chain-denoise 15`` make them run as the shapes
preset does); ``--adv-eps`` (L2
adversarial views); ``--align N`` (perceptually aligned gradients by double backprop: for N scenes per batch,
``--align-weight`` x (1 - cosine) between the image gradient of the similarity to the caption, taken at a
corrupted copy, and the repair direction clean - corrupted; the copies are painted over with palette blocks, or
``--near-miss`` of them have their shapes changed); ``--chain-repair K`` (each chain's true scene is the nearest
of K to its image and, with ``--align``, the chain images are the corrupted copies); ``--pair-twins N`` (N
two-shape scenes per batch again with their shapes' colours, kinds or both exchanged in place, captioned to
match, with a contrastive loss within each pair at ``--pair-weight``: the shipped CLIPs tell a caption from its
reversed word order at chance; the report's ``hard_binding`` and ``hard_order`` measure it). ``--init-weights``
fine-tunes existing weights. The report's ``gradient_alignment`` is the cosine on held-out block-painted scenes
(shipped ViT 0.015).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from pixgen.perceptors import bpe_path_of, register_config_file, tokenizer_for
from pixgen.shapes.models import clip_config_path
from pixgen.shapes.render import render_scenes
from pixgen.shapes.sample import rng_from
from pixgen.shapes.train.clip_batches import corrupted, make_chains, real_batch
from pixgen.shapes.train.clip_report import (
    RENDER_SIZE,
    clean_views,
    evaluate,
    gradient_alignment_report,
    hard_negatives_by_kind,
)
from pixgen.shapes.train.clip_training import (
    adversarial_views,
    content_loss,
    dream_negatives,
    gradient_alignment,
    minimal_pair_loss,
    normalise,
    single_shapes,
    soft_clip_loss,
    soft_targets,
    stray_colours,
    text_negatives,
)
from pixgen.shapes.train.training import base_parser, scheduled_steps
from pixgen.shapes.train.views import TrainViews
from pixgen.shapes.vocab import BPE_NAME, compact_config, compact_merges, compact_state_dict, write_bpe
from pixgen.shapes.world import COLOURS, SHAPES, spec_caption

CONFIGS = Path(__file__).resolve().parent / "configs"


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    p = base_parser(__doc__, steps=1500, batch=128, lr=2e-3, out=clip_config_path().parent)
    p.add_argument("--eval-size", type=int, default=512)
    p.add_argument("--clutter", type=int, default=24, help="uncaptioned several-same-colour scenes per batch")
    p.add_argument("--shape-twins", type=int, default=0,
                   help="scenes per batch repeated with one shape's kind swapped, captioned to match (0: off)")
    p.add_argument("--pair-twins", type=int, default=0,
                   help="two-shape scenes per batch repeated with their shapes' colours and/or kinds exchanged, "
                        "captioned to match (relation and binding minimal pairs; 0: off)")
    p.add_argument("--pair-weight", type=float, default=1.0,
                   help="weight of the contrastive loss within each pair twin and its original")
    p.add_argument("--twins-after", type=float, default=0.0,
                   help="--shape-twins start only after this fraction of the run (0: from the start)")
    p.add_argument("--text-negatives", type=int, default=2, help="extra one-attribute caption variants per image")
    p.add_argument("--zoom-fraction", type=float, default=0.1, help="share of zoom cuts among training views")
    p.add_argument("--clean-fraction", type=float, default=0.3, help="share of plain whole-image views")
    p.add_argument("--aux-weight", type=float, default=0.0,
                   help="weight of the auxiliary scene-content head on the image embedding (0: off)")
    p.add_argument("--shape-warmup", type=int, default=0,
                   help="steps of supervised shape classification of the image tower before contrastive training")
    p.add_argument("--dreams", type=int, default=0,
                   help="images per batch made by gradient ascent on the current model (negatives; 0: off)")
    p.add_argument("--dream-steps", type=int, default=4)
    p.add_argument("--stray", type=int, default=0,
                   help="scenes per batch repeated with stray palette-coloured cells, as negatives (0: off)")
    p.add_argument("--chains", type=int, default=0,
                   help="persistent VQGAN-drawer generation runs whose images are negatives (0: off)")
    p.add_argument("--chain-steps", type=int, default=3, help="generation steps per chain per training step")
    p.add_argument("--chain-levels", type=int, default=1,
                   help="latent grids of the chains (the drawer's latent_levels)")
    p.add_argument("--chain-pairs", type=float, default=None,
                   help="share of the chains' captions with two shapes (default: the caption sampler's, about 0.45)")
    p.add_argument("--chain-repair", type=int, default=0,
                   help="each chain's true scene is the nearest of K to its image; with --align, the chain images"
                        " are the corrupted copies, so the gradient learns to point from them to it (0: off)")
    p.add_argument("--chain-start", choices=("noise", "prior"), default="noise",
                   help="the chains' starts: encoded fractal noise, or the code prior's draw (the shapes preset's)")
    p.add_argument("--chain-warmup", type=int, default=0,
                   help="generation steps over which the chains' lr rises (the preset's lr_warmup 10 %%: 15)")
    p.add_argument("--chain-smoothness", type=float, default=10.0,
                   help="weight of the chains' smoothness loss (the shapes preset has none: 0)")
    p.add_argument("--chain-denoise", type=float, default=0.0,
                   help="weight of the chains' denoiser loss after 45 steps, relative to the CLIP distance (the "
                        "session 22 preset's denoise:0.3@30 beside a CLIP at weight 2: 15; 0: off)")
    p.add_argument("--chains-after", type=float, default=0.0,
                   help="the chains' images join the batches only after this fraction of the run (0: from the "
                        "start), so that one run learns the captions first and then its own generation's failures")
    p.add_argument("--adv-eps", type=float, default=0.0,
                   help="L2 radius of adversarial training views (0: off; 1.5 as a fine-tune)")
    p.add_argument("--adv-steps", type=int, default=2, help="projected gradient steps per adversarial view")
    p.add_argument("--align", type=int, default=0,
                   help="scenes per batch whose corrupted copy trains gradient alignment (0: off)")
    p.add_argument("--align-weight", type=float, default=1.0, help="weight of the gradient alignment loss")
    p.add_argument("--near-miss", type=float, default=0.0,
                   help="share of the --align scenes corrupted by changing their shapes (the rest: palette blocks;"
                        " docs/shapes_experiments.md: 0.5 did worse)")
    p.add_argument("--robust-after", type=float, default=0.0,
                   help="--align and --adv-eps start only after this fraction of the run (0: from the start), so "
                        "that one run both learns the captions and then hardens its gradient")
    p.add_argument("--name", default="shapes_clip", help="file stem of the saved weights and config")
    p.add_argument("--config", type=Path, default=CONFIGS / "shapes_clip_vit.json",
                   help="open_clip model config (JSON); with CLIP's full vocabulary, the saved weights and config "
                        "are cut to the shapes world's (pixgen.shapes.vocab)")
    p.add_argument("--init-weights", type=Path,
                   help="start from these weights (a shapes_clip.safetensors of the same --config) and fine-tune")
    args = p.parse_args()
    if not 1 <= args.chain_levels <= 5:
        p.error(f"--chain-levels {args.chain_levels} must be between 1 and 5 (a 16x16 latent and its coarser grids)")
    if not 0 <= args.chains_after < 1:
        p.error(f"--chains-after {args.chains_after} must be a fraction of the run in [0, 1)")
    if args.chain_pairs is not None and not 0 <= args.chain_pairs <= 1:
        p.error(f"--chain-pairs {args.chain_pairs} must be a share in [0, 1]")
    if args.chain_repair > 0 and args.chains <= 0:
        p.error("--chain-repair needs chains to repair: add --chains N")
    random_scenes = args.batch - args.clutter - args.chains - args.shape_twins - args.pair_twins
    if not 0 <= args.shape_twins <= random_scenes:
        p.error(f"--shape-twins {args.shape_twins} must be between 0 and the random scenes they repeat "
                "(at most half of --batch - --clutter - --chains)")
    if not 0 <= args.align <= random_scenes or args.pair_twins < 0:
        p.error(f"--align {args.align} and --pair-twins {args.pair_twins} must be between 0 and the captioned "
                f"scenes per batch (--batch - --clutter - --chains - --shape-twins - --pair-twins = {random_scenes})")
    for path in (args.config, args.init_weights):
        if path and not path.is_file():
            p.error(f"{path} does not exist")
    if args.init_weights and _vocab_rows(args.init_weights) != _vocab_rows(args.config):
        p.error(f"--init-weights {args.init_weights} and --config {args.config} have different vocabularies; "
                f"pass the config saved with the weights: --config {args.init_weights.with_suffix('.json')}")
    return args


def _vocab_rows(path: Path) -> int:
    """Token embedding rows of a weights file (read from its header) or of a model config."""
    if path.suffix == ".json":
        return json.loads(path.read_text())["text_cfg"]["vocab_size"]
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        return f.get_slice("token_embedding.weight").get_shape()[0]


def replace_namespace(args: argparse.Namespace, **changes) -> argparse.Namespace:
    """A copy of ``args`` with some values changed."""
    return argparse.Namespace(**{**vars(args), **changes})


def shape_warmup(model, args: argparse.Namespace, views: TrainViews, gen: torch.Generator) -> None:
    """Supervised warm start: the image tower (plus a throw-away linear head) learns to name the shape of
    one-shape scenes through the training views; contrastive training alone reaches shape very slowly."""
    from tqdm import tqdm

    if args.shape_warmup <= 0:  # off: no head, no draws from torch's random state
        return
    head = torch.nn.Linear(model.text_projection.shape[1], len(SHAPES))
    opt = torch.optim.AdamW([*model.visual.parameters(), *head.parameters()], lr=args.lr)
    rng = rng_from(gen)
    bar = tqdm(range(args.shape_warmup), desc="shape warm-up", unit="step")
    for _ in bar:
        scenes, labels = single_shapes(args.batch, rng)
        with torch.no_grad():
            batch = views(render_scenes(scenes, RENDER_SIZE))
        loss = F.cross_entropy(head(model.encode_image(normalise(batch))), labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        bar.set_postfix(loss=f"{loss.item():.3f}")


def train(args: argparse.Namespace):
    """Run the training loop; returns (model, tokenizer, steps done)."""
    import open_clip

    name = register_config_file(args.config)
    # --init-weights: fine-tune existing weights (e.g. the shipped ones, with --chains) instead of starting fresh
    model = open_clip.create_model(name, pretrained=str(args.init_weights) if args.init_weights else None)
    model.float().train()
    tokenizer = tokenizer_for(name, args.config)
    # the content head exists only when used: creating it draws from torch's random state, which the
    # training views share, so a run without it stays the run the shipped weights came from
    head = None
    if args.aux_weight > 0:
        head = torch.nn.Linear(model.text_projection.shape[1], 3 * len(COLOURS) * len(SHAPES))
    named = [*model.named_parameters(), *(head.named_parameters() if head is not None else ())]
    decay = [p for n, p in named if p.ndim >= 2 and "embedding" not in n]
    rest = [p for n, p in named if not (p.ndim >= 2 and "embedding" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": rest, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.98))
    views = TrainViews(64, zoom_fraction=args.zoom_fraction, clean_fraction=args.clean_fraction)
    gen = torch.Generator().manual_seed(args.seed)
    start = time.time()
    shape_warmup(model, args, views, gen)
    if args.minutes > 0:  # the warm-up's time counts against the budget
        args = replace_namespace(args, minutes=args.minutes - (time.time() - start) / 60)
    chains = make_chains(args, gen)
    done = 0
    for step, t, bar in scheduled_steps(opt, args, "shapes CLIP"):
        done = step + 1
        robust = t >= args.robust_after
        twins = args.shape_twins if t >= args.twins_after else 0
        active = chains if t >= args.chains_after else None  # chains made up front: the same draws either way
        images, scenes, specs, negatives, dreams, minimal = real_batch(args, gen, active, model, tokenizer, twins)
        with torch.no_grad():
            batch, zoom = views.cut(images)
        specs = specs + text_negatives(specs, args.text_negatives, gen)
        captions = [spec_caption(s) for s in specs]
        target = soft_targets(scenes, specs)
        if args.stray > 0:  # the batch's first scenes with stray colours: no caption describes them
            stray = F.interpolate(stray_colours(images[: args.stray], gen), size=64, mode="area")
            negatives = torch.cat([negatives, stray])
        if len(negatives):
            with torch.no_grad():
                batch = torch.cat([batch, views(negatives)])
            target = torch.cat([target, torch.zeros(len(negatives), target.shape[1])])
        txt = F.normalize(model.encode_text(tokenizer(captions)), dim=-1)  # once; dreams and attacks read it fixed
        if args.dreams > 0:
            batch = torch.cat([batch, dream_negatives(model, txt[: args.dreams].detach(), args.dream_steps, gen)])
            target = torch.cat([target, torch.zeros(args.dreams, target.shape[1])])
        if args.adv_eps > 0 and robust:
            batch = adversarial_views(model, txt.detach(), batch, target, args.adv_eps, args.adv_steps)
        emb = model.encode_image(normalise(batch))
        img = F.normalize(emb, dim=-1)
        emb = emb[: len(scenes)]
        scale = model.logit_scale.exp().clamp(max=100)
        loss = soft_clip_loss(img, txt, scale, target)
        if head is not None:
            loss = loss + args.aux_weight * content_loss(head, emb, scenes, ~zoom)
        if len(minimal):
            loss = loss + args.pair_weight * minimal_pair_loss(img, txt, minimal, scale)
        shown = {}
        if args.align > 0 and robust:
            clean = clean_views(images[: args.align])
            bad = corrupted(clean, scenes, int(args.align * args.near_miss), gen)
            if args.chain_repair > 0:  # the chains come first: their images, repaired to their nearest scenes
                bad[: len(dreams)] = dreams[: args.align]
            cos = gradient_alignment(model, txt[: args.align].detach(), clean, bad)
            loss = loss + args.align_weight * (1 - cos).mean()
            shown["align"] = f"{cos.mean().item():.3f}"
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        bar.set_postfix(loss=f"{loss.item():.3f}", scale=f"{model.logit_scale.exp().item():.1f}", **shown)
    return model.eval(), tokenizer, done


def save(model, out: Path, name: str, config: Path, meta: dict) -> Path:
    """Write the fp16 state dict, the model config and the shapes world's BPE merges; weights with CLIP's full
    vocabulary are cut to the compact one first (same text embeddings, 80 % smaller)."""
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().half().contiguous() for k, v in model.state_dict().items()}
    cfg = json.loads(Path(config).read_text())
    bpe = bpe_path_of(config)
    if bpe is None:  # full vocabulary: cut it
        state = compact_state_dict(state, write_bpe(out / BPE_NAME, compact_merges()))
    elif bpe.resolve() != (out / BPE_NAME).resolve():  # already compact (fine-tuned): the merges go along
        shutil.copy(bpe, out / BPE_NAME)
    cfg = compact_config(cfg, len(state["token_embedding.weight"]))  # names out/BPE_NAME either way
    (out / f"{name}.json").write_text(json.dumps(cfg, indent=4) + "\n")
    path = out / f"{name}.safetensors"
    save_file(state, str(path), metadata={k: str(v) for k, v in meta.items()})
    return path


def main() -> None:
    """Train, evaluate on held-out scenes, save, and check that open_clip loads the file."""
    import open_clip

    args = parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    t0 = time.time()
    model, tokenizer, steps = train(args)
    report = evaluate(model, tokenizer, args.seed, args.eval_size)
    minutes = (time.time() - t0) / 60
    options = {k: getattr(args, k) for k in ("seed", "batch", "lr", "clutter", "text_negatives", "zoom_fraction",
                                              "clean_fraction", "aux_weight", "shape_warmup", "dreams", "stray",
                                              "dream_steps", "chains", "chain_steps", "chain_levels", "chain_repair",
                                              "adv_eps", "adv_steps", "align", "align_weight", "near_miss",
                                              "robust_after", "shape_twins", "twins_after", "chains_after")}
    report.update(hard_negatives_by_kind(model, tokenizer, args.seed, args.eval_size))
    report.update(gradient_alignment_report(model, tokenizer, args.seed, min(args.eval_size, 128)))
    path = save(model, args.out, args.name, args.config, {**options, "steps": steps, **report})
    config = path.with_suffix(".json")
    name = register_config_file(config)
    loaded = open_clip.create_model(name, pretrained=str(path)).eval()
    again = evaluate(loaded, tokenizer_for(name, config), args.seed, args.eval_size)
    print(json.dumps({"steps": steps, "minutes": round(minutes, 1), "held_out": report,
                      "held_out_after_fp16_reload": again, "file": str(path),
                      "megabytes": round(path.stat().st_size / 2**20, 2)}, indent=2))


if __name__ == "__main__":
    main()
