//! Tables for `status` and `instances`: columns that fit the terminal, coloured states.

use fusebox_fleet::FleetState;

/// How tables are drawn: at most `width` columns wide (the terminal's, or none for a pipe),
/// and with the state coloured when `colour` is set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Look {
    /// The widest a table may be; cells wrap (at spaces where they can) to fit.
    pub width: Option<u16>,
    /// Whether to colour states (a terminal that has not asked for `NO_COLOR`).
    pub colour: bool,
}

impl Look {
    /// Plain text, as wide as the content: for pipes, files and tests.
    #[cfg(test)]
    pub const PLAIN: Look = Look {
        width: None,
        colour: false,
    };
}

/// One cell: its text, and the state it shows (for colour) if any.
pub struct Cell {
    /// What the cell shows (already made safe to print).
    pub text: String,
    /// The state it shows, for colour.
    pub state: Option<FleetState>,
}

impl From<String> for Cell {
    fn from(text: String) -> Cell {
        Cell { text, state: None }
    }
}

/// Columns two spaces apart, left-aligned, no borders. Every row is one line unless `look`
/// limits the width: then columns from the right (all but the first two) are left out
/// until every column fits its longest word, cells wrap at spaces inside their column, and a
/// last line names what was left out. The terminal never breaks a line mid-word.
pub fn table(header: &[&str], rows: Vec<Vec<Cell>>, look: Look) -> String {
    const GAP: usize = 2;
    const KEPT: usize = 2;
    let longest_word = |text: &str| {
        text.split_whitespace()
            .map(|w| w.chars().count())
            .max()
            .unwrap_or(0)
    };
    let least: Vec<usize> = (0..header.len())
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| longest_word(&cell.text))
                .chain([longest_word(header[c])])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut shown = header.len();
    if let Some(width) = look.width {
        let needed = |n: usize| least[..n].iter().sum::<usize>() + GAP * n.saturating_sub(1);
        while shown > KEPT && needed(shown) > usize::from(width) {
            shown -= 1;
        }
    }

    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::NOTHING).force_no_tty();
    if look.colour {
        t.enforce_styling();
    }
    if let Some(width) = look.width {
        t.set_width(width)
            .set_content_arrangement(comfy_table::ContentArrangement::Dynamic);
    }
    t.set_header(header.iter().map(comfy_table::Cell::new));
    for row in rows {
        t.add_row(row.into_iter().map(|cell| {
            let styled = comfy_table::Cell::new(cell.text);
            match cell.state.filter(|_| look.colour) {
                Some(state) => styled.fg(colour_of(state)),
                None => styled,
            }
        }));
    }
    let fits = look.width.is_some_and(|w| {
        least[..shown].iter().sum::<usize>() + GAP * (shown - 1) <= usize::from(w)
    });
    for (i, column) in t.column_iter_mut().enumerate() {
        let gap = if i + 1 == shown { 0 } else { GAP };
        column.set_padding((0, gap as u16));
        if i >= shown {
            column.set_constraint(comfy_table::ColumnConstraint::Hidden);
        } else if fits {
            // Never narrower than its longest word (the bound counts the padding):
            // wrapping happens at spaces.
            let least = u16::try_from(least[i] + gap).unwrap_or(u16::MAX);
            column.set_constraint(comfy_table::ColumnConstraint::LowerBoundary(
                comfy_table::Width::Fixed(least),
            ));
        }
    }
    let mut lines: Vec<String> = t.lines().map(|line| line.trim_end().to_owned()).collect();
    if shown < header.len() {
        let note = format!(
            "(left out to fit: {}; --json shows all)",
            header[shown..].join(", ")
        );
        lines.extend(wrapped(&note, look.width.map_or(usize::MAX, usize::from)));
    }
    lines.join("\n")
}

/// `text` in lines of at most `width` characters, broken at spaces (a longer word on a
/// line of its own).
fn wrapped(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    lines.push(line);
    lines
}

fn colour_of(state: FleetState) -> comfy_table::Color {
    match state {
        FleetState::Closed => comfy_table::Color::Green,
        FleetState::HalfOpen => comfy_table::Color::Yellow,
        FleetState::Open => comfy_table::Color::Red,
    }
}
