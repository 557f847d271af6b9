"""The page visitors use: upload a photo or draw digits (templates/index.html, static/)."""
from flask import Blueprint, render_template

bp = Blueprint("pages", __name__)


@bp.get("/")
def index():
    return render_template("index.html")
