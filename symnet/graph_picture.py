"""The computational graph as a picture (``symnet graph ... --format png|svg``):
one box per node with its gate and forward value, one edge per use, labelled
with the value flowing forward (green, above) and the gradient flowing back
(red, below), as the lectures draw it. Drawn by Graphviz through its Python
package ``graphviz`` (optional extra ``symnet[graph]``)."""
from __future__ import annotations

from pathlib import Path

from .errors import SymnetError


class GraphvizMissing(SymnetError):
    """The graphviz Python package or Graphviz's dot program is not installed."""


def _fmt(x) -> str:
    return format(float(x), ".4g")


def digraph(graphs: list, fmt: str = "svg", names: dict | None = None):
    """A graphviz.Digraph of [(output name, walk() nodes), ...], one cluster per output;
    ``names`` maps a node's expression to the --let name it has (shown as 'y1 = ...')."""
    try:
        import graphviz
    except ImportError:
        raise GraphvizMissing("--format png/svg needs the Python package 'graphviz' "
                              "(pip install graphviz, or pip install symnet[graph])") from None
    g = graphviz.Digraph("graph", format=fmt, graph_attr={
                             "rankdir": "LR", "fontsize": "11", "labelloc": "b",
                             "label": "edges: forward value (green) over the gradient flowing back (red)"},
                         node_attr={"shape": "box", "style": "rounded", "fontsize": "10"},
                         edge_attr={"fontsize": "9"})
    for k, (out, nodes) in enumerate(graphs):
        ident = {n.name: f"o{k}n{i}" for i, n in enumerate(nodes)}
        with g.subgraph(name=f"cluster_{k}") as sub:
            sub.attr(label=f"{out}", fontsize="11")
            for n in nodes:
                head = "" if n.is_input else n.gate.split(":")[0] + "\n"
                named = (names or {}).get(n.expr)
                text = f"{named} = {n.name}" if named and not n.is_input else n.name
                sub.node(ident[n.name], f"{head}{text}\nvalue {_fmt(n.value)}, grad {_fmt(n.grad)}")
            by_name = {m.name: m for m in nodes}
            for n in nodes:
                for c in n.children:
                    # forward: the child's value; backward: what flows along this edge,
                    # (d out / d parent)(d parent / d child); a node's grad sums its edges.
                    sub.edge(ident[c], ident[n.name],
                             label=f"<<font color='darkgreen'>{_fmt(by_name[c].value)}</font><br/>"
                                   f"<font color='red'>{_fmt(n.grad * n.local[c])}</font>>")
            last = nodes[-1]
            sub.node(f"o{k}out", f"d{out}/d{out} = 1", shape="plaintext")
            sub.edge(ident[last.name], f"o{k}out",
                     label=f"<<font color='darkgreen'>{_fmt(last.value)}</font><br/>"
                           f"<font color='red'>{_fmt(last.grad)}</font>>")
    return g


def write_picture(graphs: list, fmt: str, path=None, names: dict | None = None) -> Path:
    """Render to ``path`` (default graph.<fmt>); returns the path written."""
    g = digraph(graphs, fmt, names)
    path = Path(path or f"graph.{fmt}")
    try:
        data = g.pipe(format=fmt)
    except Exception as e:          # graphviz.ExecutableNotFound and render failures
        if type(e).__name__ == "ExecutableNotFound":
            raise GraphvizMissing("--format png/svg needs Graphviz's 'dot' program on PATH "
                                  "(Debian: apt-get install graphviz)") from None
        raise
    from .fileio import write_atomic
    return write_atomic(path, data)
