"""``reid gallery``: a persistent, searchable gallery of embedded images (faiss or Milvus + SQLite)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from .common import check_device, check_finite, plain_opts, print_json, user_errors

app = typer.Typer(help="Create, fill and search a persistent gallery of person images.", no_args_is_help=True)

PREPROCESS_HELP = "Resizing: 'loader' (PIL bicubic) or 'demo' (OpenCV bicubic), as in `reid extract`."


@app.command("create", context_settings={"ignore_unknown_options": True})
@user_errors
def create(
    folder: Path = typer.Argument(..., help="Folder for the new gallery (created; must not hold one)."),
    opts: Optional[List[str]] = typer.Argument(None, metavar="[--opts KEY VALUE ...]", help="Config overrides."),
    config_file: Optional[Path] = typer.Option(None, "--config-file", "-c", help="Model config (with MODEL.WEIGHTS)."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="A reidkit or fast-reid checkpoint."),
    onnx: Optional[Path] = typer.Option(None, "--onnx", help="An ONNX model from `reid export onnx`."),
    preprocess: str = typer.Option("loader", "--preprocess", help=PREPROCESS_HELP),
    flip: bool = typer.Option(False, "--flip", help="Average each image's features with its mirror image's."),
    engine: str = typer.Option("faiss", "--engine", help="faiss (embedded: exact numpy search, or faiss "
                                                          "HNSW/IVF-PQ) or milvus."),
    index: str = typer.Option("auto", "--index", help="faiss index: auto (exact below 100k items, else HNSW), "
                                                      "flat, hnsw or ivfpq."),
    milvus_uri: Optional[str] = typer.Option(None, "--milvus-uri", help="Milvus server (http://host:19530) or "
                                                                         "milvus-lite file; default FOLDER/milvus.db."),
) -> None:
    """Create an empty gallery for one model (the shipped default model when none is given)."""
    from ..fileio import check_output_dir
    from ..inference.preprocess import check_preprocess
    from ..inference.resolve import ModelSpec, record_name
    from ..pipeline.ingest import create_gallery
    from ..retrieval.gallery import check_new_gallery_folder

    opts = plain_opts(opts)
    check_new_gallery_folder(folder)  # before the model is loaded: seconds, not a surprise at the end
    check_output_dir(folder, "gallery folder")
    check_preprocess(preprocess)
    gallery, record = create_gallery(folder, ModelSpec(config_file, tuple(opts), weights, onnx, preprocess, flip),
                                     engine, index, milvus_uri)
    dim = gallery.dim
    gallery.close()
    typer.echo(f"created gallery {folder}: model {record_name(record)}, dim {dim}, {engine} engine")


@app.command("add")
@user_errors
def add(
    folder: Path = typer.Argument(..., help="The gallery folder."),
    images: Optional[List[str]] = typer.Argument(None, help="Image files, folders or quoted glob patterns."),
    csv_file: Optional[Path] = typer.Option(None, "--csv", help="CSV with a 'path' column and any of camera, "
                                                                "frame, timestamp, track_id, person_id."),
    batch_size: int = typer.Option(32, "--batch-size", min=1),
    chunk: int = typer.Option(1024, "--chunk", min=1, help="Images embedded and committed per transaction."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda (torch models)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Embed images and add them, with camera/frame/person read from Market- or Duke-style names or a CSV.

    Every chunk is one transaction: an interrupted add keeps the chunks committed before it. Images
    already in the gallery (the same file path) are skipped, so running the same add again after
    an interruption adds just what is missing.
    """
    from tqdm import tqdm

    from ..inference.files import expand_inputs
    from ..pipeline.ingest import add_images
    from ..retrieval import Gallery
    from ..retrieval.sources import read_metadata_csv
    from .extract_cmd import report_skipped

    check_device(device)
    table = read_metadata_csv(csv_file) if csv_file is not None else {}
    wanted = list(images or [])
    paths = expand_inputs(wanted) if wanted else sorted(table)
    if not paths:
        raise ValueError("no images: give image files, folders or glob patterns, or --csv FILE")
    with Gallery.open(folder) as gallery:
        with tqdm(total=len(paths), unit="img", desc="gallery add", disable=quiet) as bar:
            done = add_images(gallery, paths, table, chunk, batch_size, device, progress=bar.update)
        total = len(gallery)
    runtime = f" ({done.runtime})" if done.runtime else ""
    typer.echo(f"added {done.added} images to {folder}{runtime}, {total} in all")
    if done.already_present:
        typer.echo(f"skipped {done.already_present} images already in the gallery (same file); remove their items "
                   "to add them again", err=True)
    report_skipped(done.failed)
    if done.failed and not done.added:
        raise typer.Exit(1)


def _print_hits(hits: list[dict]) -> None:
    cols = ("rank", "score", "id", "camera", "frame", "timestamp", "track_id", "identity_id", "person_id", "source")
    rows = [[str(r), f"{h['score']:.4f}", *(str(h.get(c, "")) for c in cols[2:])] for r, h in enumerate(hits, 1)]
    widths = [max(len(c), *(len(row[i]) for row in rows)) if rows else len(c) for i, c in enumerate(cols)]
    typer.echo("  ".join(c.ljust(w) for c, w in zip(cols, widths)).rstrip())
    for row in rows:
        typer.echo("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())


def _print_identities(people: list[dict]) -> None:
    if not people:
        typer.echo("no items match the filters")
    for rank, p in enumerate(people, 1):
        who = f"identity {p['identity_id']}" if p["identity_id"] is not None else f"item {p['best']['id']} (no identity)"
        span = f"{p['first']:.1f}-{p['last']:.1f} s" if p["first"] is not None else "time unknown"
        typer.echo(f"{rank}. {who}  score {p['score']:.4f}  cameras {','.join(p['cameras']) or '-'}  {span}  "
                   f"{p['items']} item(s) near; best {p['best'].get('source', p['best']['id'])}")


@app.command("search")
@user_errors
def search(
    folder: Path = typer.Argument(..., help="The gallery folder."),
    query: Path = typer.Argument(..., help="Query image of the person to find."),
    top_k: int = typer.Option(10, "--top-k", "-k", min=1),
    camera: Optional[List[str]] = typer.Option(None, "--camera", help="Only these cameras, by name as `gallery info` "
                                                                       "lists them (repeatable)."),
    exclude_camera: Optional[str] = typer.Option(None, "--exclude-camera", help="Leave out this camera."),
    exclude_same_camera: bool = typer.Option(False, "--exclude-same-camera",
                                             help="Leave out the query's own camera, read from its file name "
                                                  "(Market/Duke names, or reidkit's own crops)."),
    since: Optional[float] = typer.Option(None, "--since", help="Only items with timestamp >= this."),
    until: Optional[float] = typer.Option(None, "--until", help="Only items with timestamp <= this."),
    rerank: bool = typer.Option(False, "--rerank", help="k-reciprocal re-ranking of the top 100."),
    aqe: bool = typer.Option(False, "--aqe", help="Average query expansion before searching."),
    identities: bool = typer.Option(False, "--identities", help="Answer with people, not crops: the nearest "
                                                                "cross-camera identities (reid track --gallery, "
                                                                "reid mtmc --gallery), each with its cameras and times."),
    as_json: bool = typer.Option(False, "--json", help="Print the hits as JSON."),
    html_out: Optional[Path] = typer.Option(None, "--html", help="Also write a result page with thumbnails."),
) -> None:
    """Find the gallery items nearest to a query image."""
    from ..fileio import check_output_file
    from ..pipeline.ingest import search_image, search_image_identities
    from ..retrieval import Filters, Gallery
    from ..retrieval.sources import metadata_from_name

    if not query.is_file():
        raise FileNotFoundError(f"query image not found: {query}")
    check_finite(since, "--since")
    check_finite(until, "--until")
    if html_out is not None:
        check_output_file(html_out, "--html")
    if exclude_same_camera:
        cam = metadata_from_name(query).get("camera")
        if cam is None:
            raise ValueError(f"--exclude-same-camera: no camera in the name {query.name} (expected <id>_c<camera>... "
                             "or a reidkit crop <camera>_<track>_<n>.jpg); use --exclude-camera NAME")
        if exclude_camera is not None and exclude_camera != cam:
            raise ValueError("give --exclude-camera or --exclude-same-camera, not both")
        exclude_camera = cam
    if identities and (rerank or aqe):
        raise ValueError("--identities ranks people by their nearest item: it does not combine with --rerank or --aqe")
    with Gallery.open(folder) as gallery:
        filters = Filters(cameras=camera or None, exclude_camera=exclude_camera, since=since, until=until)
        if identities:
            people = [p.to_dict() for p in search_image_identities(gallery, query, top_k, filters)]
        else:
            hits = [h.to_dict() for h in search_image(gallery, query, top_k, filters, rerank=rerank, aqe=aqe)]
    if identities:
        if html_out is not None:
            from ..viz.search_page import write_search_page

            write_search_page(html_out, query, [p["best"] for p in people], f"{query.name} in {folder}, by identity")
        if as_json:
            print_json({"query": str(query), "gallery": str(folder), "identities": people})
        else:
            _print_identities(people)
        return
    if html_out is not None:
        from ..viz.search_page import write_search_page

        write_search_page(html_out, query, hits, f"{query.name} in {folder}")
    if as_json:
        print_json({"query": str(query), "gallery": str(folder), "hits": hits})
    else:
        _print_hits(hits)
        if not hits:
            typer.echo("no items match the filters")


@app.command("info")
@user_errors
def info(
    folder: Path = typer.Argument(..., help="The gallery folder."),
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """Size, model, cameras and index of a gallery."""
    from ..retrieval import Gallery

    with Gallery.open(folder) as gallery:
        facts = gallery.info()
    if as_json:
        print_json(facts)
        return
    index = facts["index"]
    typer.echo(f"gallery {facts['folder']}: {facts['items']} items, model {facts['model']} (dim {facts['dim']})")
    typer.echo("index: " + ", ".join(f"{k} {v}" for k, v in index.items()))
    typer.echo("cameras: " + (", ".join(f"{c}: {n}" for c, n in facts["cameras"].items()) or "none"))


@app.command("rebuild-index")
@user_errors
def rebuild_index(
    folder: Path = typer.Argument(..., help="The gallery folder."),
    index: Optional[str] = typer.Option(None, "--index", help="Switch the faiss index kind: auto, flat, hnsw, ivfpq."),
) -> None:
    """Rebuild the index from the gallery's database (e.g. to switch kind or drop removed items)."""
    from ..retrieval import Gallery

    with Gallery.open(folder) as gallery:
        built = gallery.rebuild_index(index)
        typer.echo("rebuilt: " + ", ".join(f"{k} {v}" for k, v in built.describe().items()))


@app.command("remove")
@user_errors
def remove(
    folder: Path = typer.Argument(..., help="The gallery folder."),
    ids: List[int] = typer.Argument(..., help="Item ids (as `gallery search` prints them)."),
) -> None:
    """Remove items by id."""
    from ..retrieval import Gallery

    with Gallery.open(folder) as gallery:
        removed = gallery.remove(ids)
        total = len(gallery)
    typer.echo(f"removed {removed} of {len(ids)} ids ({total} items left)")
