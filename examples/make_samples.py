"""Make ragnest's small sample documents (examples/docs/) with PyMuPDF.

    python examples/make_samples.py            # writes examples/docs/
    python examples/make_samples.py OUT_DIR

Output is deterministic (fixed metadata dates, reproducible save): re-running gives
byte-identical files, so the committed documents can be checked against this script.
``SAMPLE_QUESTIONS`` lists questions whose answers sit on one known page;
``SAMPLE_ANSWERS`` gives words of each answer (for sanity tests and evaluation).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pymupdf

__all__ = ["build", "main", "SAMPLE_QUESTIONS", "SAMPLE_ANSWERS", "DOCS_DIR"]

DOCS_DIR = Path(__file__).resolve().parent / "docs"

HANDBOOK = "nimbus3_handbook.pdf"
LAB_GUIDE = "lab_safety_guide.pdf"
TRAVEL_FAQ = "travel_faq.md"

#: (question, file name, expected 1-based page; None for Markdown files without pages)
SAMPLE_QUESTIONS: list[tuple[str, str, int | None]] = [
    ("How often should I descale the machine?", HANDBOOK, 5),
    ("What does error code E03 mean?", HANDBOOK, 6),
    ("How long should a double espresso shot take?", HANDBOOK, 4),
    ("How much does the Nimbus 3 weigh?", HANDBOOK, 7),
    ("How long is the warranty if I register the machine?", HANDBOOK, 8),
    ("How many double espressos does a full water tank make?", HANDBOOK, 3),
    ("How long should I rinse my eyes at the eyewash station?", LAB_GUIDE, 3),
    ("What is the maximum fume hood sash height?", LAB_GUIDE, 2),
    ("Within how many hours must a lab incident be reported?", LAB_GUIDE, 4),
    ("What is the hotel cap per night in London?", TRAVEL_FAQ, None),
    ("When can I fly business class?", TRAVEL_FAQ, None),
]

#: Words of each answer: all appear on the expected page (or in the Markdown file), and
#: the first appears on no other page of that document.
SAMPLE_ANSWERS: dict[str, tuple[str, ...]] = {
    SAMPLE_QUESTIONS[0][0]: ("every 8 weeks", "descal"),
    SAMPLE_QUESTIONS[1][0]: ("E03", "flow"),
    SAMPLE_QUESTIONS[2][0]: ("25 to 30 seconds", "36 g"),
    SAMPLE_QUESTIONS[3][0]: ("7.9 kg",),
    SAMPLE_QUESTIONS[4][0]: ("3 years", "register"),
    SAMPLE_QUESTIONS[5][0]: ("about 30 double espressos", "1.8 litres"),
    SAMPLE_QUESTIONS[6][0]: ("15 minutes", "eyewash"),
    SAMPLE_QUESTIONS[7][0]: ("45 cm", "sash"),
    SAMPLE_QUESTIONS[8][0]: ("24 hours", "LS-7"),
    SAMPLE_QUESTIONS[9][0]: ("EUR 220", "London"),
    SAMPLE_QUESTIONS[10][0]: ("6 hours", "business class"),
}

# ---------------------------------------------------------------------------- layout

_W, _H = 595.0, 842.0  # A4 in points
_LEFT, _RIGHT, _TOP, _BOTTOM = 64.0, 531.0, 70.0, 780.0
_DATE = "D:20240301090000Z"
_STYLES = {  # name -> (font, size, space before, space after)
    "title": ("hebo", 24.0, 0.0, 10.0),
    "subtitle": ("helv", 13.0, 0.0, 18.0),
    "h1": ("hebo", 16.0, 6.0, 8.0),
    "h2": ("hebo", 12.0, 8.0, 4.0),
    "p": ("helv", 10.5, 0.0, 7.0),
    "small": ("helv", 9.0, 0.0, 6.0),
}

#: ("p" | "h1" | ..., text) | ("bullets", [...]) | ("table", widths, rows)
#: | ("figure", draw, height, caption)
Element = tuple


def _wrap(text: str, font: str, size: float, width: float) -> list[str]:
    lines: list[str] = []
    line = ""
    for word in text.split():
        trial = f"{line} {word}" if line else word
        if line and pymupdf.get_text_length(trial, fontname=font, fontsize=size) > width:
            lines.append(line)
            line = word
        else:
            line = trial
    if line:
        lines.append(line)
    return lines


class _Writer:
    """Flows headings, paragraphs, bullet lists, tables and figures down a page."""

    def __init__(self, page: pymupdf.Page) -> None:
        self.page = page
        self.y = _TOP

    def text(self, style: str, text: str, *, indent: float = 0.0) -> None:
        font, size, before, after = _STYLES[style]
        self.y += before
        for line in _wrap(text, font, size, _RIGHT - _LEFT - indent):
            self.y += size * 1.3
            self.page.insert_text((_LEFT + indent, self.y), line, fontname=font, fontsize=size)
        self.y += after
        self._check()

    def bullets(self, items: list[str]) -> None:
        font, size, _, after = _STYLES["p"]
        for item in items:
            first = True
            for line in _wrap(item, font, size, _RIGHT - _LEFT - 16):
                self.y += size * 1.3
                if first:
                    self.page.insert_text((_LEFT + 4, self.y), "-", fontname=font, fontsize=size)
                    first = False
                self.page.insert_text((_LEFT + 16, self.y), line, fontname=font, fontsize=size)
            self.y += 3
        self.y += after
        self._check()

    def table(self, widths: list[float], rows: list[list[str]]) -> None:
        """A fully ruled table (cell borders on every side), header row shaded."""
        size = 9.5
        top = self.y
        x_edges = [_LEFT]
        for w in widths:
            x_edges.append(x_edges[-1] + w)
        for r, row in enumerate(rows):
            font = "hebo" if r == 0 else "helv"
            cells = [_wrap(c, font, size, w - 10) for c, w in zip(row, widths)]
            height = max(len(c) for c in cells) * size * 1.3 + 8
            if r == 0:
                self.page.draw_rect(pymupdf.Rect(_LEFT, self.y, x_edges[-1], self.y + height),
                                    color=None, fill=(0.88, 0.91, 0.95))
            for c, lines in enumerate(cells):
                ty = self.y + 4
                for line in lines:
                    ty += size * 1.3
                    self.page.insert_text((x_edges[c] + 5, ty - 2), line, fontname=font,
                                          fontsize=size)
            self.page.draw_line((_LEFT, self.y), (x_edges[-1], self.y), color=(0.4, 0.4, 0.4),
                                width=0.5)
            self.y += height
        self.page.draw_line((_LEFT, self.y), (x_edges[-1], self.y), color=(0.4, 0.4, 0.4),
                            width=0.5)
        for x in x_edges:
            self.page.draw_line((x, top), (x, self.y), color=(0.4, 0.4, 0.4), width=0.5)
        self.y += 12
        self._check()

    def figure(self, draw: Callable[[pymupdf.Page, pymupdf.Rect], None], height: float,
               caption: str) -> None:
        area = pymupdf.Rect(_LEFT, self.y + 4, _RIGHT, self.y + 4 + height)
        draw(self.page, area)
        self.y = area.y1 + 4
        self.text("small", caption)

    def footer(self, label: str, number: int) -> None:
        self.page.draw_line((_LEFT, _BOTTOM + 16), (_RIGHT, _BOTTOM + 16), color=(0.6, 0.6, 0.6),
                            width=0.5)
        self.page.insert_text((_LEFT, _BOTTOM + 32), label, fontname="helv", fontsize=8)
        self.page.insert_text((_RIGHT - 40, _BOTTOM + 32), f"Page {number}", fontname="helv",
                              fontsize=8)

    def _check(self) -> None:
        if self.y > _BOTTOM:
            raise RuntimeError(f"page content overflows ({self.y:.0f} > {_BOTTOM:.0f} pt)")


def _write_pdf(path: Path, title: str, footer: str, pages: list[list[Element]]) -> Path:
    doc = pymupdf.open()
    for number, elements in enumerate(pages, start=1):
        writer = _Writer(doc.new_page(width=_W, height=_H))
        for element in elements:
            kind = element[0]
            if kind == "bullets":
                writer.bullets(element[1])
            elif kind == "table":
                writer.table(element[1], element[2])
            elif kind == "figure":
                writer.figure(element[1], element[2], element[3])
            else:
                writer.text(kind, element[1])
        writer.footer(footer, number)
    doc.set_metadata({
        "title": title, "author": "ragnest sample documents", "subject": "", "keywords": "",
        "creator": "ragnest examples/make_samples.py", "producer": "PyMuPDF",
        "creationDate": _DATE, "modDate": _DATE,
    })
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(doc.tobytes(garbage=4, clean=True, deflate=True, use_objstms=1,
                                 no_new_id=True, reproducible=True))
    doc.close()
    return path


# ---------------------------------------------------------------------------- handbook

def _draw_machine(page: pymupdf.Page, area: pymupdf.Rect) -> None:
    """Figure 1: a front view of the machine with labelled parts."""
    grey, dark, blue = (0.75, 0.75, 0.78), (0.25, 0.25, 0.28), (0.55, 0.75, 0.95)
    cx = area.x0 + 150
    body = pymupdf.Rect(cx - 90, area.y0 + 20, cx + 90, area.y1 - 30)
    page.draw_rect(body, color=dark, fill=grey, width=1.2)
    tank = pymupdf.Rect(body.x1 - 28, body.y0 + 10, body.x1 - 6, body.y1 - 40)
    page.draw_rect(tank, color=dark, fill=blue, width=0.8)
    page.draw_circle((cx - 20, body.y0 + 40), 16, color=dark, fill=(1, 1, 1), width=1)  # gauge
    page.draw_line((cx - 20, body.y0 + 40), (cx - 10, body.y0 + 30), color=(0.8, 0.1, 0.1),
                   width=1.2)
    page.draw_circle((cx + 25, body.y0 + 40), 10, color=dark, fill=dark)  # control dial
    group = pymupdf.Rect(cx - 45, body.y0 + 75, cx + 5, body.y0 + 92)
    page.draw_rect(group, color=dark, fill=dark)
    page.draw_line((cx + 5, group.y0 + 8), (cx + 55, group.y0 + 8), color=dark, width=3)  # handle
    page.draw_line((body.x0 + 10, body.y0 + 70), (body.x0 + 2, body.y1 - 60), color=dark,
                   width=2.5)  # steam wand
    tray = pymupdf.Rect(body.x0 + 10, body.y1 - 22, body.x1 - 10, body.y1 - 8)
    page.draw_rect(tray, color=dark, fill=(0.5, 0.5, 0.52))
    labels = [
        ("Pressure gauge", (cx - 20, body.y0 + 40)),
        ("Control dial", (cx + 25, body.y0 + 40)),
        ("Group head and portafilter", (cx - 20, group.y1)),
        ("Water tank (1.8 litres)", (tank.x1, tank.y0 + 40)),
        ("Steam wand", (body.x0 + 4, body.y1 - 70)),
        ("Drip tray", (tray.x1, tray.y0 + 7)),
    ]
    lx = area.x0 + 300
    for i, (label, anchor) in enumerate(labels):
        ly = area.y0 + 30 + i * 28
        page.draw_line(anchor, (lx - 6, ly - 3), color=(0.3, 0.3, 0.3), width=0.5)
        page.insert_text((lx, ly), f"{i + 1}  {label}", fontname="helv", fontsize=9.5)


def _handbook_pages() -> list[list[Element]]:
    return [
        [  # 1
            ("title", "Nimbus 3 Espresso Machine"),
            ("subtitle", "Owner's Handbook - model NB-300, edition 2.1 (March 2024)"),
            ("p", "Thank you for choosing the Nimbus 3 from Aurelio Appliances Ltd. The Nimbus 3 "
                  "is a compact single-boiler espresso machine with a fast thermoblock heater, a "
                  "15 bar pump and a commercial-size 58 mm portafilter. Please read this handbook "
                  "before first use and keep it for later reference."),
            ("h1", "Contents"),
            ("bullets", ["Safety instructions and what is in the box - page 2",
                         "Getting to know your machine (Figure 1) - page 3",
                         "Setup and first use - page 4",
                         "Cleaning and descaling - page 5",
                         "Troubleshooting and error codes - page 6",
                         "Technical specifications - page 7",
                         "Warranty and service - page 8"]),
            ("p", "The serial number of your machine is printed on a silver label under the drip "
                  "tray. Write it down here before you register the machine: you will need it for "
                  "every service request."),
        ],
        [  # 2
            ("h1", "Safety instructions"),
            ("bullets", [
                "Connect the machine only to an earthed socket rated 220-240 V, 50/60 Hz.",
                "Never immerse the machine, the power cord or the plug in water or any other "
                "liquid.",
                "The group head, the steam wand and the cup warming tray get hot during use. Touch "
                "only the handles and the control dial.",
                "Do not remove the portafilter while the pump is running: water under pressure at "
                "about 93 degrees Celsius can escape.",
                "Children aged 8 years and older may use the machine only under supervision.",
                "Unplug the machine before cleaning it and when it will not be used for several "
                "days.",
            ]),
            ("h1", "What is in the box"),
            ("bullets", [
                "Nimbus 3 espresso machine (model NB-300) with removable 1.8 litre water tank",
                "58 mm portafilter with single (9 g) and double (18 g) filter baskets",
                "Blind basket for backflushing",
                "Stainless steel tamper, 58 mm",
                "Milk jug, 350 ml",
                "Two descaling sachets (Aurelio DS-20) and one AquaPure water filter cartridge",
                "Water hardness test strip",
            ]),
            ("p", "If anything is missing or damaged, contact the retailer within 14 days of "
                  "purchase."),
        ],
        [  # 3
            ("h1", "Getting to know your machine"),
            ("p", "Figure 1 shows the front of the Nimbus 3. The water tank slides out from the "
                  "right side; it holds 1.8 litres, enough for about 30 double espressos. The "
                  "pressure gauge shows brewing pressure: during extraction the needle should "
                  "stay in the grey espresso zone between 8 and 10 bar."),
            ("figure", _draw_machine, 250,
             "Figure 1: Front view of the Nimbus 3 espresso machine: (1) pressure gauge, "
             "(2) control dial, (3) group head and portafilter, (4) water tank (1.8 litres), "
             "(5) steam wand, (6) drip tray."),
            ("p", "The control dial has three positions: brew (turn left), standby (centre) and "
                  "steam (turn right). The ring light around the dial shows the machine state: "
                  "white means ready, pulsing white means heating, and an orange drop symbol "
                  "means that descaling is due."),
        ],
        [  # 4
            ("h1", "Setup and first use"),
            ("p", "Place the machine on a flat, dry surface at least 10 cm away from the wall. "
                  "Test your water with the hardness strip supplied and set the hardness level "
                  "in the settings menu (levels 1 to 4)."),
            ("bullets", [
                "Rinse the water tank, fit the AquaPure filter cartridge and fill the tank with "
                "fresh cold water up to the MAX mark.",
                "Switch on with the power button on the back. The thermoblock heats up in about "
                "25 seconds; the ring light stops pulsing when the machine is ready.",
                "Prime the system: without a portafilter, turn the dial to brew and run two full "
                "tanks of water through the group head and the steam wand.",
            ]),
            ("h1", "Brewing espresso"),
            ("p", "The default brewing temperature is 93 degrees Celsius. You can adjust it from "
                  "88 to 96 degrees Celsius in steps of 1 degree in the settings menu. For a "
                  "double espresso, dose 18 g of finely ground coffee into the double basket, "
                  "tamp evenly with about 15 kg of pressure and aim for 36 g of espresso in the "
                  "cup after 25 to 30 seconds."),
            ("p", "If the shot runs faster than 20 seconds, grind finer; if it takes longer than "
                  "35 seconds, grind coarser. Pre-infusion wets the coffee puck at low pressure "
                  "for 4 seconds before full pressure is applied."),
            ("h1", "Steaming milk"),
            ("p", "Turn the dial to steam: the machine needs about 10 seconds to reach steam "
                  "temperature. Purge the wand for 2 seconds before and after steaming. Fill the "
                  "350 ml jug to just below the spout for two cappuccinos."),
        ],
        [  # 5
            ("h1", "Cleaning and descaling"),
            ("h2", "Daily"),
            ("p", "Purge and wipe the steam wand with a damp cloth after every use. Empty and "
                  "rinse the drip tray when the red float indicator shows. Rinse the portafilter "
                  "and baskets with warm water; do not put them in the dishwasher."),
            ("h2", "Weekly"),
            ("p", "Backflush the group head once a week: fit the blind basket, add one Aurelio "
                  "CT-5 cleaning tablet, then run five cycles of 10 seconds on and 10 seconds "
                  "off."),
            ("h2", "Descaling"),
            ("p", "Descale the machine every 8 weeks. In hard water areas (above 14 degrees dH, "
                  "hardness level 4) descale every 4 weeks. The machine also reminds you: when "
                  "the orange drop symbol flashes on the ring light, descaling is due. Limescale "
                  "damage caused by skipping descaling is not covered by the warranty."),
            ("bullets", [
                "Remove the AquaPure filter cartridge from the tank.",
                "Dissolve one DS-20 descaling sachet in 1 litre of lukewarm water in the tank.",
                "Place a 1.5 litre container under the group head and the steam wand.",
                "Hold the power button and the steam button together for 5 seconds to start "
                "descale mode. The cycle runs automatically and takes about 25 minutes.",
                "When the ring light turns white, rinse the tank, fill it with fresh water and "
                "run the rinse cycle (hold both buttons again for 5 seconds).",
            ]),
            ("h2", "Water filter"),
            ("p", "Replace the AquaPure water filter cartridge every 60 days, or after 50 litres "
                  "of water, whichever comes first."),
        ],
        [  # 6
            ("h1", "Troubleshooting and error codes"),
            ("p", "When an error occurs, the ring light flashes red and the display shows a code. "
                  "Switch the machine off, fix the cause described below, and switch it on "
                  "again."),
            ("table", [60, 170, 237], [
                ["Code", "Meaning", "What to do"],
                ["E01", "Water tank empty or not seated", "Fill the tank to the MAX mark and push "
                 "it firmly into place until it clicks."],
                ["E02", "Thermoblock overheating", "Switch off and let the machine cool down for "
                 "30 minutes. Check that the ventilation slots are not covered."],
                ["E03", "Low water flow: the flow sensor detects a blocked pump or heavy "
                 "limescale", "Descale the machine (page 5). If E03 returns after descaling, "
                 "contact Aurelio service."],
                ["E04", "Temperature sensor fault", "Do not use the machine. Contact Aurelio "
                 "service; this needs a technician."],
                ["E05", "Steam wand blocked", "Clean the steam tip with the pin tool from the "
                 "accessory box, then purge the wand for 10 seconds."],
            ]),
            ("h2", "Other problems"),
            ("bullets", [
                "Coffee is lukewarm: preheat the cups and the portafilter; raise the brewing "
                "temperature by 1 to 2 degrees.",
                "No crema: use fresher beans (roasted 7 to 30 days ago) and grind finer.",
                "Water leaks around the portafilter: clean the group gasket or replace it "
                "(spare part NB-G58, recommended every 12 months).",
            ]),
        ],
        [  # 7
            ("h1", "Technical specifications"),
            ("table", [200, 267], [
                ["Property", "Value"],
                ["Model", "Nimbus 3 (NB-300)"],
                ["Rated power", "1,450 W"],
                ["Voltage", "220-240 V, 50/60 Hz"],
                ["Pump pressure", "15 bar (over-pressure valve set to 9 bar at the group)"],
                ["Heating system", "Stainless steel thermoblock, heat-up time 25 seconds"],
                ["Water tank", "1.8 litres, removable"],
                ["Portafilter", "58 mm, chrome-plated brass"],
                ["Brewing temperature", "88 to 96 degrees Celsius (default 93)"],
                ["Dimensions (W x D x H)", "28 x 34 x 38 cm"],
                ["Weight (empty)", "7.9 kg"],
                ["Cable length", "1.1 m"],
                ["Automatic standby", "after 20 minutes without use (adjustable 10-60 min)"],
                ["Noise during extraction", "62 dB(A)"],
            ]),
            ("p", "Energy saving: in automatic standby the machine uses less than 0.5 W. "
                  "Specifications may change without notice."),
        ],
        [  # 8
            ("h1", "Warranty and service"),
            ("p", "Aurelio Appliances Ltd gives a limited warranty of 2 years from the date of "
                  "purchase on material and manufacturing defects. If you register your machine "
                  "at aurelio-appliances.example/register within 30 days of purchase, the "
                  "warranty is extended to 3 years."),
            ("h2", "Not covered by the warranty"),
            ("bullets", [
                "Damage caused by limescale when the machine was not descaled as described on "
                "page 5.",
                "Wear parts: group gasket, shower screen, filter baskets and water filter "
                "cartridges.",
                "Commercial use (more than 50 espressos a day) and repairs by unauthorised "
                "persons.",
            ]),
            ("h2", "Service"),
            ("p", "Contact Aurelio service at +44 20 7946 0321, Monday to Friday from 8:00 to "
                  "18:00, or service@aurelio-appliances.example. Have the serial number from the "
                  "label under the drip tray and your proof of purchase ready. Repairs under "
                  "warranty are normally completed within 10 working days."),
            ("h2", "Disposal"),
            ("p", "Do not dispose of the machine with household waste. Take it to a collection "
                  "point for electrical and electronic equipment (WEEE)."),
        ],
    ]


# ---------------------------------------------------------------------------- lab guide

def _lab_pages() -> list[list[Element]]:
    return [
        [  # 1
            ("title", "Chemistry Teaching Laboratory"),
            ("subtitle", "Safety Guide - Meridian Institute of Science, rooms C2.10 to C2.14"),
            ("p", "This guide applies to everyone who works in the chemistry teaching "
                  "laboratories: students, teaching assistants, technicians and visitors. Read it "
                  "before your first practical session and sign the safety declaration. The "
                  "laboratory supervisor is Dr. Hannah Okafor (room C2.08, extension 3172)."),
            ("h1", "General rules"),
            ("bullets", [
                "Never work alone: at least two people must be present in the laboratory.",
                "No eating, drinking, chewing gum or applying cosmetics in the laboratory.",
                "Tie back long hair and remove dangling jewellery before starting work.",
                "Keep bags and coats in the lockers outside room C2.10, not on benches.",
            ]),
            ("h1", "Personal protective equipment"),
            ("p", "Safety goggles to EN 166 must be worn at all times in the laboratory, also "
                  "when you are only writing up results. A buttoned, knee-length cotton lab coat "
                  "and closed shoes are required. Nitrile gloves are provided at every bench; "
                  "change them at once if they are contaminated and never touch door handles or "
                  "keyboards with gloves on."),
        ],
        [  # 2
            ("h1", "Handling and storing chemicals"),
            ("p", "Read the safety data sheet before using any substance for the first time. Work "
                  "with volatile, toxic or flammable substances only in a fume hood. Keep the "
                  "fume hood sash at a height of 45 cm or lower while working; the airflow "
                  "monitor must show a face velocity of at least 0.5 m/s. If the alarm sounds, "
                  "close the sash and stop work."),
            ("bullets", [
                "Store acids and bases separately, below eye level, in trays.",
                "No more than 50 litres of flammable liquids may be kept in the flammables "
                "cabinet of each room.",
                "Label every container with contents, concentration, date and your name.",
                "Always add acid to water, never water to acid.",
            ]),
            ("h1", "Waste disposal"),
            ("table", [150, 317], [
                ["Waste container", "What goes in"],
                ["Green label", "Halogenated organic solvents (e.g. dichloromethane)"],
                ["Yellow label", "Non-halogenated organic solvents (e.g. acetone, ethanol)"],
                ["Blue label", "Aqueous solutions containing heavy metals"],
                ["White bucket", "Broken glass (never in normal bins)"],
            ]),
            ("p", "Waste containers may be filled to 80 percent at most. The technician empties "
                  "them every Friday."),
        ],
        [  # 3
            ("h1", "Emergencies"),
            ("p", "In any emergency call the campus emergency number, extension 4444, and tell "
                  "the supervisor. The assembly point is car park B, next to the main entrance."),
            ("h2", "Chemicals in the eyes"),
            ("p", "Go to the eyewash station at once and rinse the eyes for at least 15 minutes, "
                  "holding the eyelids open. Remove contact lenses if possible. Seek medical "
                  "advice afterwards and take the safety data sheet with you."),
            ("h2", "Chemicals on the skin or clothing"),
            ("p", "Remove contaminated clothing and rinse the skin with plenty of water for 15 "
                  "minutes. For large spills on the body use the safety shower next to the exit "
                  "of each room."),
            ("h2", "Fire"),
            ("p", "Small fires in a beaker can be smothered with a watch glass. Use the CO2 "
                  "extinguisher for electrical fires and burning solvents; never use water on "
                  "burning solvents or metals. Fire blankets hang next to each door. If a fire "
                  "cannot be controlled within seconds, pull the fire alarm and leave the "
                  "building."),
            ("h2", "Spills"),
            ("p", "Spill kits are in the cupboard under the fume hood in each room. Spills of "
                  "more than 500 ml, or of any highly toxic substance, are handled only by the "
                  "technicians: leave the room and close the door."),
        ],
        [  # 4
            ("h1", "Incident reporting"),
            ("p", "Every accident, injury, near miss or spill must be reported to the laboratory "
                  "supervisor within 24 hours, using incident form LS-7 (available on the "
                  "intranet and at the technicians' office). Reports are reviewed by the safety "
                  "committee, which meets on the first Monday of each month."),
            ("h1", "Training and inspections"),
            ("bullets", [
                "All laboratory users complete the online safety course before their first "
                "session and an annual refresher course each September.",
                "First aid kits are checked every month; eyewash stations are flushed weekly by "
                "the technicians.",
                "The safety committee inspects every laboratory once per term.",
            ]),
            ("h1", "Contacts"),
            ("table", [200, 267], [
                ["Role", "Contact"],
                ["Laboratory supervisor", "Dr. Hannah Okafor, extension 3172"],
                ["Chief technician", "Marek Lindqvist, extension 3180"],
                ["Campus emergency", "extension 4444"],
                ["Safety committee", "safety@meridian.example"],
            ]),
        ],
    ]


# ---------------------------------------------------------------------------- travel FAQ

TRAVEL_FAQ_TEXT = """\
# Corvid Analytics travel and expenses FAQ

This FAQ summarises the Corvid Analytics travel policy (version 4, valid from 1 January 2024).
Questions not answered here go to the finance team at travel@corvid.example.

## Booking travel

### Who books my trip?
All flights, trains and hotels are booked through the travel portal, TripDesk. Bookings made
outside TripDesk are only reimbursed when they are at least 10 percent cheaper than the portal's
best offer for the same trip.

### Which class can I fly?
Economy class is the rule for flights shorter than 6 hours. For flights of 6 hours or more you
may book premium economy, or business class with written approval from your director.

### Can I take the train instead?
Yes. For trips under 4 hours by train, the train is preferred over flying. Second class is the
standard; first class is allowed on journeys longer than 3 hours.

## Hotels

### How much can I spend on a hotel?
The hotel cap is EUR 160 per night including breakfast. In London, Paris, Zurich and New York
the cap is EUR 220 per night. Book through TripDesk to get the corporate rates.

### Can I stay with friends instead?
Yes. If you do not claim a hotel you receive a flat EUR 30 per night instead.

## Expenses

### What is the daily allowance?
The per diem for meals is EUR 45 per full travel day and EUR 25 for a day with less than 8
hours of travel. Meals paid by a client or by the company are deducted.

### How much is the mileage rate for my own car?
Using your own car is reimbursed at EUR 0.30 per kilometre, up to 600 km per trip.

### When must I submit my expenses?
Submit expense claims in the expense tool within 30 days after the trip ends. Attach receipts for
every item above EUR 25. Claims submitted later than 90 days are not reimbursed.

### Who approves my expense claim?
Your line manager approves claims up to EUR 2,000; larger claims also need approval from finance.
Approved claims are paid with the next monthly salary.
"""


# ---------------------------------------------------------------------------- main

def build(out_dir: str | Path = DOCS_DIR) -> list[Path]:
    """Write the sample documents to ``out_dir``; returns the paths written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [
        _write_pdf(out / HANDBOOK, "Nimbus 3 Espresso Machine - Owner's Handbook",
                   "Nimbus 3 Espresso Machine - Owner's Handbook", _handbook_pages()),
        _write_pdf(out / LAB_GUIDE, "Chemistry Teaching Laboratory Safety Guide",
                   "Meridian Institute of Science - Laboratory Safety Guide", _lab_pages()),
    ]
    faq = out / TRAVEL_FAQ
    faq.write_bytes(TRAVEL_FAQ_TEXT.encode("utf-8"))
    paths.append(faq)
    return paths


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    for path in build(args[0] if args else DOCS_DIR):
        print(f"wrote {path} ({path.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
